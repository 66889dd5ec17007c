"""A long prompt is prefilled a slice per engine step (so other streams decode in between), in-process over the
real tiny model: the answer must be the one mlx-lm gives for the whole prompt at once, also when a second
request arrives mid-prefill and the first moves into the batch with the part of its prompt already cached."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from shim.engine.batch import SOLO, ModelBatch, Sequence
from shim.engine.prefill import FIRST_TOKENS
from shim.engine.runner import Completion, sampler
from shim.engine.types import Done, Piece
from shim.errors import ShimError
from shim.options import GenerationOptions

ANSWER = 6  # tokens


class _Inbox:
    """Where a sequence's events go (the engine's Job, without the event loop)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.events: list[Piece | Done | ShimError | None] = []

    def put(self, event: Piece | Done | ShimError | None) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> tuple[Any, Any]:
    import mlx.core as mx

    from shim.engine.mlx_lm_api import load_model

    loaded, tokenizer = load_model(str(tiny_model_dir))
    loaded.set_dtype(mx.float32)  # as the engine loads it on the CPU backend
    return loaded, tokenizer


def _sequence(model: tuple[Any, Any], prompt: list[int], tokens: int = ANSWER) -> Sequence:
    opts = GenerationOptions(num_predict=tokens, temperature=0, num_ctx=4096)
    completion = Completion(model[1], prompt, opts, think=False, shift=False, tools=None, emit=lambda _: None)
    return Sequence(listener=_Inbox(), completion=completion, sampler=sampler(opts), processors=[],
                    exclusive=False, stateful=False, shift=False, num_ctx=4096, num_keep=0, load_ns=0)  # fmt: skip


def _whole_prompt_answer(model: tuple[Any, Any], prompt: list[int], tokens: int = ANSWER) -> list[int]:
    """mlx-lm's generate_step, prefilling the whole prompt in its first step (up to the first end token)."""
    import mlx.core as mx

    from shim.engine.mlx_lm_api import generate_step

    answer = []
    for token, _ in generate_step(mx.array(prompt), model[0], max_tokens=tokens, prefill_step_size=len(prompt)):
        answer.append(token)
        if token in model[1].eos_token_ids:
            break
    return answer


def _prompt(length: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(3, 500) for _ in range(length)]


def test_a_long_prompt_is_prefilled_over_several_steps_and_answers_as_a_whole_prefill(model: Any) -> None:
    prompt = _prompt(FIRST_TOKENS + 300, 1)  # longer than the first slice (before any measurement)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=0)
    seq = _sequence(model, prompt)
    batch.admit(seq)
    assert not batch.step()  # one slice: no token yet, most of the prompt still to prefill
    assert batch.solo is not None and batch.solo.fill.pending and not seq.completion.generated
    while batch.sequences:
        batch.step()
    assert seq.completion.generated == _whole_prompt_answer(model, prompt)


def test_a_request_arriving_mid_prefill_moves_it_into_the_batch_with_what_is_cached(model: Any) -> None:
    long, short = _prompt(FIRST_TOKENS + 300, 2), _prompt(40, 3)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=0)
    first, second = _sequence(model, long), _sequence(model, short)
    batch.admit(first)
    batch.step()  # one slice of the long prompt
    assert batch.solo is not None and SOLO in batch.sequences
    done = len(long) - 1 - len(batch.solo.fill.pending)
    assert 0 < done < len(long) - 1
    batch.admit(second)
    assert batch.solo is None and SOLO not in batch.sequences
    while batch.sequences:
        batch.step()
    assert first.completion.generated == _whole_prompt_answer(model, long)
    assert second.completion.generated == _whole_prompt_answer(model, short)


@pytest.mark.parametrize("handed_out", [1, 2, 5])
def test_a_request_arriving_after_the_first_tokens_moves_the_lone_one_into_the_batch_unchanged(
    model: Any, handed_out: int
) -> None:
    """The lone sequence's cache holds every token it has handed out; in the batch it is fed the last again,
    with the answer it gives alone."""
    first_prompt, second_prompt = _prompt(50, 5), _prompt(30, 6)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=0)
    first, second = _sequence(model, first_prompt, 12), _sequence(model, second_prompt, 12)
    batch.admit(first)
    while first in batch.sequences.values() and len(first.completion.generated) < handed_out:
        batch.step()  # an answer ending sooner fails the next assertion instead of looping here
    batch.admit(second)
    assert batch.solo is None
    while batch.sequences:
        batch.step()
    assert first.completion.generated == _whole_prompt_answer(model, first_prompt, 12)
    assert second.completion.generated == _whole_prompt_answer(model, second_prompt, 12)


@pytest.mark.parametrize("answer", [1, 3])
def test_a_lone_answer_s_kept_cache_serves_the_next_turn_as_a_cold_start(model: Any, answer: int) -> None:
    """The next turn (prompt, answer, more) prefills only `more` from the kept cache, to the answer a cold
    start gives."""
    prompt = _prompt(60, 7)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=1 << 30)
    seq = _sequence(model, prompt, answer)
    batch.admit(seq)
    while batch.sequences:
        batch.step()
    more = _prompt(10, 8)
    follow_up = prompt + seq.completion.generated + more
    cache, rest = batch._cached(follow_up)
    assert cache is not None and rest == more
    nxt = _sequence(model, follow_up, 8)
    batch.admit(nxt)
    while batch.sequences:
        batch.step()
    assert nxt.completion.generated == _whole_prompt_answer(model, follow_up, 8)
