"""How a byte-level BPE vocabulary (`tokenizer.ggml.model = "gpt2"`) splits text before its merges run.

A GGUF keeps the vocabulary and the merges, but of the Hugging Face `tokenizer.json` it came from it keeps only
a name, `tokenizer.ggml.pre`, that llama.cpp's converter picked by hashing the tokenizer's output. The split the
merges were learned on is not optional: the same merges on differently cut words give other token ids, which the
model never saw. So each name maps back to the normalizer and pre-tokenizer of the original `tokenizer.json`,
written with the `tokenizers` library's own classes. llama.cpp (src/llama-vocab.cpp, `llm_tokenizer_bpe`) keeps
an adapted copy of the same regexes; where its copy differs from the original only in syntax ((?i:…) spelled out
as [sS]…), the original is used here, since `tokenizers` (Oniguruma) reads it as written.

Names not listed are refused: guessing a split silently tokenizes wrong, and a clear error says what to add.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Regex, normalizers, pre_tokenizers
from tokenizers.normalizers import Normalizer
from tokenizers.pre_tokenizers import PreTokenizer

from registry.gguf.errors import GGUFError

# GPT-2's own word split: what `ByteLevel(use_regex=True)` applies.
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

# tiktoken's cl100k split, as Llama 3 (and DBRX, Smaug) ship it.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2's split: cl100k with single digits.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Mistral's tekken (Nemo, Pixtral, Ministral): case-aware words, single digits.
TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tiktoken's o200k split (GPT-4o, gpt-oss, Llama 4).
O200K_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# DeepSeek V3 / R1: numbers in threes, runs of CJK kana/ideographs apart, then words.
DEEPSEEK_V3_SPLITS = (
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
)

# DeepSeek LLM (7B/67B): line breaks, Latin-like letter runs, ASCII/full-width punctuation, trailing blanks, CJK.
DEEPSEEK_LLM_SPLITS = (
    r"[\r\n]",
    r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",  # noqa: E501
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+$",
    r"[一-龥ࠀ-一가-퟿]+",
    r"\p{N}+",
)


@dataclass(frozen=True)
class ByteLevelSplit:
    """The text pipeline in front of a byte-level BPE model, as the original `tokenizer.json` had it.

    `ignore_merges`: a word that is itself in the vocabulary is taken whole (tiktoken-made vocabularies; llama.cpp
    sets the same flag for the same names). `clean_up_spaces`: transformers' `clean_up_tokenization_spaces`,
    which llama.cpp mirrors as `clean_spaces` per name.
    """

    pre_tokenizer: PreTokenizer
    normalizer: Normalizer | None = None
    ignore_merges: bool = False
    clean_up_spaces: bool = True


def _byte_level(use_regex: bool, trim_offsets: bool = True) -> PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=trim_offsets, use_regex=use_regex)


def _regex_then_bytes(*patterns: str, trim_offsets: bool = True) -> PreTokenizer:
    """Each pattern cuts the pieces the previous one left (matches kept as their own pieces), then bytes."""
    splits: list[PreTokenizer] = [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in patterns]
    return pre_tokenizers.Sequence([*splits, _byte_level(use_regex=False, trim_offsets=trim_offsets)])


def _gpt2() -> ByteLevelSplit:
    return ByteLevelSplit(_byte_level(use_regex=True))


def _neox() -> ByteLevelSplit:
    """GPT-NeoX-20B's tokenizer (MPT, OLMo): NFC, then GPT-2's split."""
    return ByteLevelSplit(_byte_level(use_regex=True), normalizer=normalizers.NFC())


def _digits_then_gpt2(nfc: bool = False, clean_up_spaces: bool = True) -> ByteLevelSplit:
    """StarCoder's tokenizer (SmolLM, Refact, Command-R): every digit its own piece, then GPT-2's split."""
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), _byte_level(use_regex=True)])
    return ByteLevelSplit(pre, normalizer=normalizers.NFC() if nfc else None, clean_up_spaces=clean_up_spaces)


def _llama3() -> ByteLevelSplit:
    return ByteLevelSplit(_regex_then_bytes(LLAMA3_SPLIT), ignore_merges=True)


def _qwen2() -> ByteLevelSplit:
    return ByteLevelSplit(
        _regex_then_bytes(QWEN2_SPLIT, trim_offsets=False), normalizer=normalizers.NFC(), clean_up_spaces=False
    )


def _falcon() -> ByteLevelSplit:
    """Falcon: punctuation runs apart, GPT-2's split, then digits cut into threes."""
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Punctuation(behavior="contiguous"),
            _byte_level(use_regex=True),
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.Split(Regex(r"[0-9][0-9][0-9]"), behavior="isolated"),
        ]
    )
    return ByteLevelSplit(pre)


_SPLITS = {
    "gpt2": _gpt2,
    "neox": _neox,
    "starcoder": _digits_then_gpt2,
    "smollm": lambda: _digits_then_gpt2(clean_up_spaces=False),
    "command-r": lambda: _digits_then_gpt2(nfc=True, clean_up_spaces=False),
    "llama3": _llama3,
    "cl100k": lambda: ByteLevelSplit(_regex_then_bytes(LLAMA3_SPLIT)),
    "qwen2": _qwen2,
    "falcon": _falcon,
    "tekken": lambda: ByteLevelSplit(_regex_then_bytes(TEKKEN_SPLIT), ignore_merges=True, clean_up_spaces=False),
    "o200k": lambda: ByteLevelSplit(_regex_then_bytes(O200K_SPLIT), ignore_merges=True, clean_up_spaces=False),
    "deepseek-v3": lambda: ByteLevelSplit(_regex_then_bytes(*DEEPSEEK_V3_SPLITS), clean_up_spaces=False),
    "deepseek-llm": lambda: ByteLevelSplit(_regex_then_bytes(*DEEPSEEK_LLM_SPLITS), clean_up_spaces=False),
}

# `tokenizer.ggml.pre` names (llama.cpp's converter, `get_vocab_base_pre`) -> the split family above.
PRE_TYPE_FAMILY: dict[str, str] = {
    "default": "gpt2",
    "gpt-2": "gpt2",
    "phi-2": "gpt2",
    "mpt": "neox",
    "olmo": "neox",
    "starcoder": "starcoder",
    "refact": "starcoder",
    "smollm": "smollm",
    "command-r": "command-r",
    "llama3": "llama3",
    "llama-v3": "llama3",
    "llama-bpe": "llama3",
    "falcon3": "llama3",
    "dbrx": "cl100k",
    "smaug-bpe": "cl100k",
    "qwen2": "qwen2",
    "deepseek-r1-qwen": "qwen2",
    "falcon": "falcon",
    "tekken": "tekken",
    "gpt-4o": "o200k",
    "gpt-oss": "o200k",
    "llama4": "o200k",
    "deepseek-v3": "deepseek-v3",
    "deepseek-llm": "deepseek-llm",
}


def byte_level_split(pre: str | None) -> ByteLevelSplit:
    """The pipeline for a `tokenizer.ggml.pre` name; a file without one gets GPT-2's, as llama.cpp gives it."""
    family = PRE_TYPE_FAMILY.get(pre or "default")
    if family is None:
        raise GGUFError(f"unsupported GGUF tokenizer pre-tokenizer {pre!r}")
    return _SPLITS[family]()
