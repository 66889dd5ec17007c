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

# The cased letters (Unicode's Lu/Ll/Lt runs) DeepSeek LLM's tokenizer.json lists in its letter class, as code
# point ranges: written as characters, several of them (U+1F7D, U+1FBE, U+2126, U+212A...) would be folded into
# their canonical equivalents by any tool that normalizes text, and the class would silently change.
_DEEPSEEK_LLM_LETTERS = (
    (0x41, 0x5A),
    (0x61, 0x7A),
    (0xB5, 0xB5),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x1BA),
    (0x1BC, 0x1BF),
    (0x1C4, 0x293),
    (0x295, 0x2AF),
    (0x370, 0x373),
    (0x376, 0x377),
    (0x37B, 0x37D),
    (0x37F, 0x37F),
    (0x386, 0x386),
    (0x388, 0x38A),
    (0x38C, 0x38C),
    (0x38E, 0x3A1),
    (0x3A3, 0x3F5),
    (0x3F7, 0x481),
    (0x48A, 0x52F),
    (0x531, 0x556),
    (0x10A0, 0x10C5),
    (0x13A0, 0x13F5),
    (0x13F8, 0x13FD),
    (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF),
    (0x1D00, 0x1D2B),
    (0x1D6B, 0x1D77),
    (0x1D79, 0x1D9A),
    (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45),
    (0x1F48, 0x1F4D),
    (0x1F50, 0x1F57),
    (0x1F59, 0x1F59),
    (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D),
    (0x1F80, 0x1FB4),
    (0x1FB6, 0x1FBC),
    (0x1FBE, 0x1FBE),
    (0x1FC2, 0x1FC4),
    (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3),
    (0x1FD6, 0x1FDB),
    (0x1FE0, 0x1FEC),
    (0x1FF2, 0x1FF4),
    (0x1FF6, 0x1FFC),
    (0x2102, 0x2102),
    (0x2107, 0x2107),
    (0x210A, 0x2113),
    (0x2115, 0x2115),
    (0x2119, 0x211D),
    (0x2124, 0x2124),
    (0x2126, 0x2126),
    (0x2128, 0x2128),
    (0x212A, 0x212D),
    (0x212F, 0x2134),
    (0x2139, 0x2139),
    (0x213C, 0x213F),
    (0x2145, 0x2149),
    (0x214E, 0x214E),
    (0x2183, 0x2184),
    (0x2C00, 0x2C7B),
    (0x2C7E, 0x2CE4),
    (0x2CEB, 0x2CEE),
    (0x2CF2, 0x2CF3),
    (0xA640, 0xA66D),
    (0xA680, 0xA69B),
    (0xA722, 0xA76F),
    (0xA771, 0xA787),
    (0xA78B, 0xA78E),
    (0xAB70, 0xABBF),
    (0xFB00, 0xFB06),
    (0xFB13, 0xFB17),
    (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A),
    (0x10400, 0x1044F),
    (0x104B0, 0x104D3),
    (0x104D8, 0x104FB),
    (0x10C80, 0x10CB2),
    (0x10CC0, 0x10CF2),
    (0x118A0, 0x118DF),
    (0x1E900, 0x1E943),
)


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """The ranges as regex class text, made of the characters themselves (Oniguruma reads `\\x{B5}` as a byte)."""
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


# DeepSeek LLM (7B/67B): line breaks, cased-letter runs, ASCII/full-width punctuation, trailing blanks, CJK, digits.
DEEPSEEK_LLM_SPLITS = (
    r"[\r\n]",
    rf"\s?[{_char_class(_DEEPSEEK_LLM_LETTERS)}]+",
    rf"\s?[!-/:-~{_char_class(((0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002)))}]+",
    r"\s+$",
    f"[{_char_class(((0x4E00, 0x9FA5), (0x0800, 0x4E00), (0xAC00, 0xD7FF)))}]+",
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
