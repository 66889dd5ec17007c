"""Context shift when an answer outgrows num_ctx: Ollama's rule (keep num_keep, drop half of the rest) must
always shorten the context and keep the token the next step feeds, whatever num_keep says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shim.engine.batch import _shifted


class _Seq:
    def __init__(self, context: list[int], num_keep: int) -> None:
        self.context, self.num_keep = context, num_keep


@pytest.mark.parametrize("num_keep", [0, 4, 14, 15, 16, 100_000])
@pytest.mark.parametrize("length", [2, 3, 16])
def test_a_shift_shortens_the_context_and_keeps_the_newest_token(num_keep: int, length: int) -> None:
    context = list(range(length))
    shifted = _shifted(_Seq(context, num_keep))  # type: ignore[arg-type]
    assert len(shifted) < length
    assert shifted[-1] == context[-1]
    assert shifted[: min(num_keep, length - 2)] == context[: min(num_keep, length - 2)]


@pytest.mark.parametrize("num_keep", [-1, 100_000])
def test_an_answer_longer_than_num_ctx_with_any_num_keep_runs_to_num_predict(server: Any, num_keep: int) -> None:
    """num_keep -1 keeps the whole prompt (Ollama's rule). It used to make the context grow at each shift
    until the server spent its time prefilling ever longer contexts (this request never ended)."""
    options = {"temperature": 0, "presence_penalty": 100, "repeat_last_n": -1, "num_predict": 150, "num_ctx": 24,
               "num_keep": num_keep}  # fmt: skip
    body = {"model": "qwen-tiny", "prompt": "<|endoftext|><|im_end|>def f(x):", "raw": True, "stream": False,
            "options": options}  # fmt: skip
    resp = httpx.post(server.url + "/api/generate", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["eval_count"] == 150
