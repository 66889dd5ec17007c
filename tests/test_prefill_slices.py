"""A long prompt is prefilled a slice per engine step (so other streams decode in between), in-process over the
real tiny model: the answer must be the one mlx-lm gives for the whole prompt at once, also when a second
request arrives mid-prefill and the first moves into the batch with the part of its prompt already cached."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from shim.engine.batch import SOLO, ModelBatch, Sequence, after
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


def _sequence(model: tuple[Any, Any], prompt: list[int]) -> Sequence:
    opts = GenerationOptions(num_predict=ANSWER, temperature=0, num_ctx=4096)
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


def _answer_sequence(model: tuple[Any, Any], prompt: list[int], tokens: int) -> Sequence:
    opts = GenerationOptions(num_predict=tokens, temperature=0, num_ctx=4096)
    completion = Completion(model[1], prompt, opts, think=False, shift=False, tools=None, emit=lambda _: None)
    return Sequence(listener=_Inbox(), completion=completion, sampler=sampler(opts), processors=[],
                    exclusive=False, stateful=False, shift=False, num_ctx=4096, num_keep=0, load_ns=0)  # fmt: skip


def _first_token_step(batch: ModelBatch) -> None:
    """Step the lone sequence until it has handed out its first token."""
    seq = batch.sequences[SOLO]
    while not seq.completion.generated:
        batch.step()


def test_a_lone_sequence_s_first_token_goes_out_before_the_next_step_is_built(model: Any) -> None:
    """generate_step builds and queues the step that feeds token n back before handing n out; for the first
    token that only makes the client wait. The cache still lacks the first token when it is handed out, and from
    the second on it holds each token handed out (the step behind it queued)."""
    prompt = _prompt(40, 4)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=0)
    seq = _answer_sequence(model, prompt, 20)
    batch.admit(seq)
    _first_token_step(batch)
    assert batch.solo is not None and batch.solo.steps is not None
    assert batch.solo.cache[0].offset == len(prompt) and not batch.solo.steps.fed
    batch.step()
    assert batch.solo.cache[0].offset == len(prompt) + 2 and batch.solo.steps.fed
    while batch.sequences:
        batch.step()
    assert seq.completion.generated == _whole_prompt_answer(model, prompt, 20)


@pytest.mark.parametrize("handed_out", [1, 2, 5])
def test_a_request_arriving_after_the_first_tokens_moves_the_lone_one_into_the_batch_unchanged(
    model: Any, handed_out: int
) -> None:
    """After its first token the lone sequence's cache lacks that token, after later ones it holds the last:
    either way it goes on in the batch with the answer it gives alone."""
    first_prompt, second_prompt = _prompt(50, 5), _prompt(30, 6)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=0)
    first, second = _answer_sequence(model, first_prompt, 12), _answer_sequence(model, second_prompt, 12)
    batch.admit(first)
    while len(first.completion.generated) < handed_out:
        batch.step()
    batch.admit(second)
    assert batch.solo is None
    while batch.sequences:
        batch.step()
    assert first.completion.generated == _whole_prompt_answer(model, first_prompt, 12)
    assert second.completion.generated == _whole_prompt_answer(model, second_prompt, 12)


@pytest.mark.parametrize("answer", [1, 3])
def test_a_lone_answer_s_kept_cache_serves_the_next_turn_as_a_cold_start(model: Any, answer: int) -> None:
    """A one-token answer ends before its token is fed back: its cache is kept for the prompt alone, and the
    next turn (prompt, answer, more) prefills from there to the answer a cold start gives."""
    prompt = _prompt(60, 7)
    batch = ModelBatch(model[0], num_parallel=4, cache_bytes=1 << 30)
    seq = _answer_sequence(model, prompt, answer)
    batch.admit(seq)
    while batch.sequences:
        batch.step()
    assert batch.prompt_cache is not None and len(batch.prompt_cache) == 1
    more = _prompt(10, 8)
    follow_up = prompt + seq.completion.generated + more
    cache, rest = batch._cached(follow_up)
    assert cache is not None and rest == (seq.completion.generated + more if answer == 1 else more)
    nxt = _answer_sequence(model, follow_up, 8)
    batch.admit(nxt)
    while batch.sequences:
        batch.step()
    assert nxt.completion.generated == _whole_prompt_answer(model, follow_up, 8)


def test_the_lone_decode_gives_generate_step_s_tokens_and_log_probabilities(model: Any) -> None:
    """Token for token, with a logits processor that reads the tokens it has seen (a repetition penalty)."""
    import mlx.core as mx

    from shim.engine.mlx_lm_api import generate_step, make_logits_processors, make_prompt_cache
    from shim.engine.solo_decode import SoloDecode

    prompt = _prompt(30, 9)
    penalty = make_logits_processors(repetition_penalty=1.5, repetition_context_size=8)
    expected = list(generate_step(mx.array(prompt), model[0], max_tokens=15, logits_processors=penalty))
    cache = make_prompt_cache(model[0])
    model[0](mx.array(prompt[:-1])[None], cache=cache)
    seeing = [after(mx.array(prompt[:-1]), p) for p in penalty]  # as the engine shows them the prompt
    decode = SoloDecode(prompt[-1], model[0], lambda x: mx.argmax(x, axis=-1), seeing, cache)
    got = [decode.next() for _ in range(15)]
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert all(mx.allclose(a, b, atol=1e-5).item() for (_, a), (_, b) in zip(got, expected, strict=True))
