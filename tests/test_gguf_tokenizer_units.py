"""GGUF tokenizer rebuild on small made-up vocabularies: what is refused (and said so), how each pre-tokenizer
name cuts text, the stop tokens, chat templates and embedded tokenizer.json files."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from registry.gguf.end_of_generation import end_of_generation_ids
from registry.gguf.errors import GGUFError
from registry.gguf.pretokenize import PRE_TYPE_FAMILY, byte_level_split
from registry.gguf.tokenizer import build_tokenizer, write_tokenizer_files
from tests.gguf_tokenizer_sources import TEXTS


def byte_alphabet() -> list[str]:
    """GPT-2's 256 byte characters, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def byte_level_metadata(pre: str | None = "gpt-2", **extra: Any) -> dict[str, Any]:
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", *byte_alphabet(), "Ġt", "he", "Ġthe"]
    metadata: dict[str, Any] = {
        "general.architecture": "qwen2",
        "qwen2.context_length": 4096,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3, 3, 3, 4] + [1] * (len(tokens) - 4),
        "tokenizer.ggml.merges": ["Ġ t", "h e", "Ġt he"],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}",
    }
    if pre is not None:
        metadata["tokenizer.ggml.pre"] = pre
    metadata.update(extra)
    return metadata


@pytest.mark.parametrize("model", ["t5", "rwkv", "ugm", "plamo2", "no_vocab", None])
def test_unsupported_vocabulary_kind_is_refused_by_name(model: str | None, tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="unsupported GGUF tokenizer model") as error:
        write_tokenizer_files(byte_level_metadata(**{"tokenizer.ggml.model": model}), tmp_path)
    assert repr(model) in error.value.message
    assert list(tmp_path.iterdir()) == [], "nothing is written"


@pytest.mark.parametrize("pre", ["jais", "chatglm-bpe", "kimi-k2", "made-up"])
def test_unsupported_pre_tokenizer_is_refused_by_name(pre: str, tmp_path: Path) -> None:
    with pytest.raises(GGUFError) as error:
        write_tokenizer_files(byte_level_metadata(pre), tmp_path)
    assert error.value.message == f"unsupported GGUF tokenizer pre-tokenizer {pre!r}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"tokenizer.ggml.tokens": []}, "no tokenizer.ggml.tokens"),
        ({"tokenizer.ggml.merges": []}, "no tokenizer.ggml.merges"),
        ({"tokenizer.ggml.merges": ["nospace"]}, "'nospace' is not two tokens"),
        ({"tokenizer.ggml.token_type": [3]}, "1 token types for 263 tokens"),
        ({"tokenizer.huggingface.json": "{not json"}, "embedded tokenizer.huggingface.json does not load"),
    ],
)
def test_broken_metadata_is_refused(change: dict[str, Any], says: str, tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match=says):
        write_tokenizer_files(byte_level_metadata(**change), tmp_path)


def test_repeated_token_is_refused() -> None:
    metadata = byte_level_metadata()
    metadata["tokenizer.ggml.tokens"] = [*metadata["tokenizer.ggml.tokens"][:-1], "he"]
    with pytest.raises(GGUFError, match="repeats token 'he'"):
        build_tokenizer(metadata)


def pieces(pre: str, text: str) -> list[str]:
    split = byte_level_split(pre)
    normalized = split.normalizer.normalize_str(text) if split.normalizer else text
    return [piece for piece, _ in split.pre_tokenizer.pre_tokenize_str(normalized)]


@pytest.mark.parametrize(
    ("pre", "digits"),
    [
        ("gpt-2", ["Ġ1234567"]),
        ("smollm", ["Ġ", "1", "2", "3", "4", "5", "6", "7"]),
        ("starcoder", ["Ġ", "1", "2", "3", "4", "5", "6", "7"]),
        ("llama-bpe", ["Ġ", "123", "456", "7"]),
        ("qwen2", ["Ġ", "1", "2", "3", "4", "5", "6", "7"]),
        ("tekken", ["Ġ", "1", "2", "3", "4", "5", "6", "7"]),
        ("gpt-4o", ["Ġ", "123", "456", "7"]),
        ("deepseek-v3", ["Ġ", "123", "456", "7"]),
        ("deepseek-llm", ["Ġ", "1234567"]),
        ("falcon", ["Ġ", "123", "456", "7"]),
    ],
)
def test_each_pre_tokenizer_cuts_numbers_as_its_original(pre: str, digits: list[str]) -> None:
    assert pieces(pre, "x 1234567")[-len(digits) :] == digits


def test_splits_differ_where_their_originals_differ() -> None:
    assert pieces("llama-bpe", "I'M here\n\n  x") == ["I", "'M", "Ġhere", "ĊĊ", "Ġ", "Ġx"]
    assert pieces("gpt-2", "I'M here") == ["I", "'", "M", "Ġhere"]
    assert pieces("gpt-4o", "camelCase x's") == ["camel", "Case", "Ġx's"]
    assert pieces("tekken", "camelCase x's") == ["camel", "Case", "Ġx", "'s"]
    assert pieces("deepseek-v3", "abc東京def") == ["abc", "æĿ±äº¬", "def"]
    assert pieces("gpt-2", "abc東京def") == ["abcæĿ±äº¬def"]
    # DeepSeek LLM's punctuation class spans ':' to '~', ASCII letters included, so those are cut apart again.
    assert pieces("deepseek-llm", "Ωmega 東京") == ["Î©", "mega", "Ġ", "æĿ±äº¬"]
    assert pieces("falcon", "a...b") == ["a", "...", "b"]
    assert pieces("qwen2", "e\u0301") == pieces("qwen2", "\u00e9"), "Qwen normalizes to NFC"
    assert pieces("olmo", "e\u0301") == pieces("olmo", "\u00e9"), "GPT-NeoX normalizes to NFC"
    assert pieces("gpt-2", "e\u0301") != pieces("gpt-2", "\u00e9")


@pytest.mark.parametrize("pre", sorted(PRE_TYPE_FAMILY))
def test_every_supported_pre_tokenizer_round_trips_text(pre: str, tmp_path: Path) -> None:
    write_tokenizer_files(byte_level_metadata(pre), tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        expected = (
            unicodedata.normalize("NFC", text)
            if pre in ("qwen2", "deepseek-r1-qwen", "mpt", "olmo", "command-r")
            else text
        )
        assert tokenizer.decode(tokenizer.encode(text), clean_up_tokenization_spaces=False) == expected, text
    assert tokenizer.encode("<|im_start|> the<think>") == [1, 262, 3]


def test_missing_pre_tokenizer_is_gpt2_as_llama_cpp_reads_it() -> None:
    with_default = build_tokenizer(byte_level_metadata(None)).encode("I'M 123")
    assert with_default.ids == build_tokenizer(byte_level_metadata("gpt-2")).encode("I'M 123").ids


def test_written_files_carry_special_tokens_and_flags(tmp_path: Path) -> None:
    write_tokenizer_files(byte_level_metadata("qwen2", **{"tokenizer.ggml.add_bos_token": True}), tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (config["bos_token"], config["eos_token"], config["add_bos_token"], config["add_eos_token"]) == (
        "<|im_start|>",
        "<|im_end|>",
        True,
        False,
    )
    assert config["model_max_length"] == 4096 and config["clean_up_tokenization_spaces"] is False
    assert json.loads((tmp_path / "special_tokens_map.json").read_text()) == {
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
    }
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.encode(" the") == [1, 262]
    assert tokenizer.decode([1, 262, 3, 2], skip_special_tokens=True) == " the<think>", "<think> is not special"


def test_named_chat_templates_are_kept(tmp_path: Path) -> None:
    metadata = byte_level_metadata(**{"tokenizer.chat_template.tool_use": "TOOLS{{ tools | length }}"})
    metadata["tokenizer.chat_templates"] = ["tool_use"]
    write_tokenizer_files(metadata, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    messages = [{"role": "user", "content": "hi"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == "<|im_start|>hi<|im_end|>"
    assert tokenizer.apply_chat_template(messages, tools=[{}], chat_template="tool_use", tokenize=False) == "TOOLS1"


def test_embedded_tokenizer_json_is_used_as_it_is(tmp_path: Path) -> None:
    original = build_tokenizer(byte_level_metadata("llama-bpe"))
    metadata = byte_level_metadata("not-a-known-one", **{"tokenizer.huggingface.json": original.to_str()})
    write_tokenizer_files(metadata, tmp_path)
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).to_str() == original.to_str()


def test_end_of_generation_follows_llama_cpp() -> None:
    tokens = ["<|endoftext|>", "<|start|>", "<|end|>", "<|return|>", "<|call|>", "<|message|>", "<|fim_pad|>", "x"]
    metadata = {"tokenizer.ggml.eos_token_id": 3, "tokenizer.ggml.eos_token_ids": [7, 99]}
    # <|end|> ends a message, not the turn, where <|return|> and <|call|> exist (gpt-oss).
    assert end_of_generation_ids(metadata, tokens) == [3, 0, 4, 6, 7]
    assert end_of_generation_ids({"tokenizer.ggml.eot_token_id": 5}, tokens[:3]) == [0, 2]
    assert end_of_generation_ids({"tokenizer.ggml.eot_token_id": 5}, tokens) == [0, 3, 4, 5, 6]


def test_sentencepiece_vocabulary_with_merges_but_no_scores(tmp_path: Path) -> None:
    """Gemma 4's files: `gemma4` model, "▁" spaces, byte fallback, merges given."""
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", *(f"<0x{b:02X}>" for b in range(256)), "▁", "h", "i", "▁h", "▁hi"]
    metadata = {
        "tokenizer.ggml.model": "gemma4",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3, 3, 3, 2] + [6] * 256 + [1] * 5,
        "tokenizer.ggml.merges": ["▁ h", "▁h i"],
        "tokenizer.ggml.bos_token_id": 2,
        "tokenizer.ggml.eos_token_id": 1,
        "tokenizer.ggml.unknown_token_id": 3,
        "tokenizer.ggml.add_bos_token": True,
    }
    write_tokenizer_files(metadata, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.encode("hi hi") == [2, 261, 262, 264]
    assert tokenizer.encode(" hiß") == [2, 264, 4 + 0xC3, 4 + 0x9F]
    assert tokenizer.decode(tokenizer.encode(" hiß\nok"), skip_special_tokens=True) == " hiß\nok"
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == 1
