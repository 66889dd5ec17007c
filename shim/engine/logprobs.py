"""Per-token log-probabilities for requests that ask for them (Ollama's `logprobs` / `top_logprobs`).

What is reported is the model's own distribution at each position: the log-softmax of the logits the model
produced, before repeat/presence penalties, the format grammar and temperature. That is what Ollama v0.24.0
reports (its runner's CalculateLogprobs works on the raw logits), so a client sees the same numbers from
either server, and they do not move with sampling settings.

mlx-lm hands each step's vector *after* the logits processors. A request with processors therefore gets
`capture` as its first processor, which keeps the untouched logits; mlx-lm computes step n+1 before it
yields token n, so the kept logits queue up and each token takes the oldest. A request without processors
uses mlx-lm's vector as it is (the same numbers). Requests that do not ask pay nothing.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, cast

import mlx.core as mx

from shim.engine.mlx_lm_api import hf_tokenizer
from shim.engine.types import TokenLogprob


class LogprobRecorder:
    def __init__(self, tokenizer: Any, top: int) -> None:
        self.top = max(top, 0)
        self._hf = hf_tokenizer(tokenizer)
        self._raw: collections.deque[mx.array] = collections.deque()
        self._byte_level = _is_byte_level(self._hf)
        self._texts: dict[int, tuple[str, bytes]] = {}

    def capture(self, tokens: mx.array, logits: mx.array) -> mx.array:
        """A logits processor that changes nothing: it keeps the model's logits for the token they pick. It
        keeps its own array: mlx-lm's repetition penalty writes into the one it is given."""
        self._raw.append(logits.astype(mx.float32))
        return logits

    def restart(self) -> None:
        """The sequence's decoding starts over (joined a batch, context shift): steps computed ahead are void."""
        self._raw.clear()

    def record(self, token: int, logprobs: mx.array) -> TokenLogprob:
        """The entry of `token`, given the vector mlx-lm sampled it from."""
        if self._raw:
            logits = self._raw.popleft()
            logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        vector = logprobs.reshape(-1).astype(mx.float32)
        chosen = vector[token]
        top: list[TokenLogprob] = []
        if self.top:
            k = min(self.top, vector.size)
            ids = mx.argpartition(-vector, kth=k - 1)[:k]
            values = vector[ids]
            mx.eval(chosen, ids, values)
            pairs = zip(cast(list[float], values.tolist()), cast(list[int], ids.tolist()), strict=True)  # 1-D: flat
            for value, other in sorted(pairs, key=lambda p: -p[0]):
                top.append(self._entry(other, value))
        return self._entry(token, float(chosen), top)

    def _entry(self, token: int, logprob: float, top: list[TokenLogprob] | None = None) -> TokenLogprob:
        text, raw = self._text(token)
        return TokenLogprob(token=text, logprob=logprob, bytes=raw, top=top or [])

    def _text(self, token: int) -> tuple[str, bytes]:
        """The token decoded on its own, as Ollama reports it, and its bytes (a byte-level BPE token that is
        part of a UTF-8 character decodes to U+FFFD, but its bytes are the real ones)."""
        cached = self._texts.get(token)
        if cached is None:
            text = str(self._hf.decode([token]))
            raw = text.encode()
            if "\ufffd" in text and self._byte_level:
                piece = self._hf.convert_ids_to_tokens(token)
                decoded = byte_decoder()
                if isinstance(piece, str) and all(c in decoded for c in piece):
                    raw = bytes(decoded[c] for c in piece)
            cached = self._texts[token] = (text, raw)
        return cached


def _is_byte_level(hf: Any) -> bool:
    decoder = getattr(getattr(hf, "backend_tokenizer", None), "decoder", None)
    return type(decoder).__name__ == "ByteLevel"


@functools.cache
def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted: the vocabulary characters of byte-level BPE to their bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}
