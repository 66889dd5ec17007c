"""The per-token decode of the incremental detokenizer, straight from the Rust tokenizer when that gives the
same text.

The detokenizer decodes two short windows for every generated token. Through transformers' `decode` each
call first converts the ids (`to_py_obj`) and then looks up its clean-up settings, several times the cost of
the Rust decode itself; at 16 streams that was a fifth of the engine thread's own Python time (py-spy, CPU).
For a tokenizer whose decode is transformers' own `TokenizersBackend` one and whose clean-up step is off,
that path returns exactly `backend.decode(ids, skip_special_tokens=False)`, so it is called directly; any
other tokenizer (a slow one, a class that overrides decoding, clean-up on) keeps transformers' decode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Decode = Callable[[Sequence[int]], str]


def text_decoder(hf: Any) -> Decode:
    """`hf.decode` for id lists, the Rust tokenizer's decode where that is provably the same."""
    backend = getattr(hf, "_tokenizer", None)
    if backend is None or not _plain_transformers_decode(hf) or _cleans_up(hf, backend):
        return hf.decode
    rust_decode = backend.decode

    def decode(ids: Sequence[int]) -> str:
        return rust_decode(list(ids), skip_special_tokens=False)

    return decode


def _plain_transformers_decode(hf: Any) -> bool:
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # another transformers layout: keep its own decode
        return False
    cls = type(hf)
    return (
        isinstance(hf, TokenizersBackend)
        and getattr(cls, "decode", None) is PreTrainedTokenizerBase.decode
        and getattr(cls, "_decode", None) is TokenizersBackend._decode
    )


def _cleans_up(hf: Any, backend: Any) -> bool:
    """Whether transformers' `_decode` would rewrite the text after decoding (its clean-up step, which it
    skips for BPE models unless forced)."""
    if not getattr(hf, "clean_up_tokenization_spaces", False):
        return False
    forced = "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output"
    return type(backend.model).__name__ != "BPE" or bool(getattr(hf, forced, False))
