"""Units of the engine's throughput work: the per-token decode shortcut, created_at formatting, wake-up
pacing, the per-backend defaults (parallelism, memory budget) and Metal's wired limit."""

from __future__ import annotations

import random
from datetime import UTC
from pathlib import Path

from transformers import AutoTokenizer

from shim.engine.detokenizer import IncrementalDetokenizer
from shim.engine.fast_decode import text_decoder
from shim.timefmt import _format, utc_from_ns
from tests.gguf_tokenizer_sources import TEXTS, cached


def _tokenizer_dirs(tiny_model_dir: Path) -> list[Path]:
    return [tiny_model_dir, *(cached(name) for name in ("llama3", "qwen3", "deepseek_v3"))]


def test_fast_decode_gives_transformers_text(tiny_model_dir: Path) -> None:
    """Every window the detokenizer may decode (special tokens, split UTF-8 sequences included) decodes to
    the same text as transformers' decode, and the streamed text of whole answers is the same."""
    rng = random.Random(0)
    for directory in _tokenizer_dirs(tiny_model_dir):
        hf = AutoTokenizer.from_pretrained(str(directory))
        fast = text_decoder(hf)
        assert fast != hf.decode, f"{directory.name}: expected the Rust decode path"
        specials = list(hf.all_special_ids)
        for text in TEXTS:
            ids = hf.encode(text, add_special_tokens=False)
            ids = ids[: len(ids) // 2] + specials[:2] + ids[len(ids) // 2 :]
            for start in range(len(ids)):
                window = ids[start : start + rng.randint(0, 6)]
                assert fast(window) == hf.decode(window), (directory.name, window)
            streamed = [IncrementalDetokenizer(d, ids[:3]) for d in (fast, hf.decode)]
            texts = ["".join(d.add(t) for t in ids[3:]) + d.flush() for d in streamed]
            assert texts[0] == texts[1]
        ids = [rng.randrange(len(hf)) for _ in range(400)]  # random ids: broken UTF-8 sequences and all
        assert all(fast(ids[i : i + 3]) == hf.decode(ids[i : i + 3]) for i in range(len(ids)))


def test_fast_decode_keeps_transformers_cleanup() -> None:
    """A WordPiece tokenizer whose decode cleans up spaces keeps transformers' decode (which rewrites
    " ," to ","); with the clean-up off, the shortcut gives transformers' text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "hello": 1, ",": 2, "world": 3, "!": 4, "##s": 5}
    rust = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rust.decoder = decoders.WordPiece(cleanup=False)  # only transformers cleans up
    ids = [1, 2, 3, 5, 4]
    cleaning = PreTrainedTokenizerFast(tokenizer_object=rust, clean_up_tokenization_spaces=True)
    assert text_decoder(cleaning) == cleaning.decode
    assert cleaning.decode(ids) == "hello, worlds!"
    plain = PreTrainedTokenizerFast(tokenizer_object=rust, clean_up_tokenization_spaces=False)
    assert text_decoder(plain) != plain.decode
    assert text_decoder(plain)(ids) == plain.decode(ids) == "hello , worlds !"


def test_created_at_matches_the_general_formatter() -> None:
    rng = random.Random(1)
    for ns in [0, 1, 999_999_999, 1_000_000_000, 1_764_000_000_120_000_000, *(rng.randrange(4 * 10**18) for _ in range(5000))]:
        assert utc_from_ns(ns) == _format(ns // 1_000_000_000, ns % 1_000_000_000, UTC)
