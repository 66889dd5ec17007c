"""Incremental detokenization that works for any tokenizer family.

mlx-lm's streaming detokenizers drop the leading space of the first generated token (a SentencePiece
convention), which breaks raw completions such as "The sky is" + " blue". Decoding a short window of
tokens and emitting only the new suffix (the prefix-offset method used by HF's text-generation servers)
keeps every byte, waits for complete UTF-8 sequences, and costs one small decode per token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_CONTEXT = 4  # tokens of lead-in so the first generated token decodes as it would mid-text


class IncrementalDetokenizer:
    def __init__(self, decode: Callable[[Sequence[int]], str], lead_in: Sequence[int] = ()) -> None:
        self._decode = decode
        self._tokens = list(lead_in[-_CONTEXT:])
        self._prefix = 0
        self._read = len(self._tokens)

    def add(self, token: int) -> str:
        """Return the text this token completes (empty while a UTF-8 sequence is incomplete)."""
        self._tokens.append(token)
        prefix_text = self._decode(self._tokens[self._prefix : self._read])
        new_text = self._decode(self._tokens[self._prefix :])
        if len(new_text) <= len(prefix_text) or new_text.endswith("\ufffd"):
            return ""
        self._prefix, self._read = self._read, len(self._tokens)
        if len(self._tokens) > 64:  # keep the window small: drop what can no longer matter
            drop = self._prefix
            self._tokens = self._tokens[drop:]
            self._prefix, self._read = 0, self._read - drop
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        """Whatever is still pending at the end (an incomplete sequence decodes with replacement)."""
        if self._read == len(self._tokens):
            return ""
        prefix_text = self._decode(self._tokens[self._prefix : self._read])
        new_text = self._decode(self._tokens[self._prefix :])
        self._prefix = self._read = len(self._tokens)
        return new_text[len(prefix_text) :]
