"""Prompts with an exact token count that no prompt cache can reuse.

A prompt is one letters-only word that encodes to a single token, unique within the run, followed by random
digits (Qwen2's pre-tokenizer splits digits one by one, so n digits are n tokens). Every prompt therefore
has exactly the length asked for, in-process and through every server, and no two prompts share even their
first token: mlx-shim's and mlx_lm.server's prefix caches cannot shorten a prefill, and MLX CUDA sees the
same prompt shapes after the warm-up as during it.
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Iterator


class Prompts:
    """Unique prompts of exact token lengths for one tokenizer (anything with `encode(text) -> list[int]`)."""

    def __init__(self, tokenizer, seed: int = 0) -> None:
        self._encode = tokenizer.encode
        self._rng = random.Random(seed)
        self._words = self._single_token_words()

    def _single_token_words(self) -> Iterator[str]:
        letters = string.ascii_letters
        candidates = [a + b + c for a in letters for b in letters for c in letters]
        candidates += [a + b for a in letters for b in letters]
        random.Random(0).shuffle(candidates)
        words = (w for w in candidates if len(self._encode(w + "0")) == 2)
        return itertools.cycle(list(itertools.islice(words, 4000)))

    def text(self, tokens: int) -> str:
        """A new prompt of exactly `tokens` tokens (checked)."""
        text = next(self._words) + "".join(self._rng.choice(string.digits) for _ in range(tokens - 1))
        if len(self._encode(text)) != tokens:
            raise AssertionError(f"prompt encodes to {len(self._encode(text))} tokens, not {tokens}")
        return text

    def word(self) -> str:
        """A word no other prompt of this run starts with (for a chat's system prompt)."""
        return next(self._words)
