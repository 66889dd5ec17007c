"""Fill-in-the-middle formats of the common code-model families, found by their special tokens.

Ollama gets fill-in-the-middle from a Go TEMPLATE with `.Suffix`; MLX models carry no such template, but
their tokenizers carry the family's FIM tokens, which say exactly how the model was trained to infill.
The prompt is built from token ids (`<prefix-token> prefix <suffix-token> suffix <middle-token>`, or
suffix first for Codestral), so a marker can never be spelled by the user's code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InfillFormat:
    family: str
    prefix: str
    suffix: str
    middle: str  # "" where the model starts the middle right after the last part (Codestral)
    suffix_first: bool = False
    ends: tuple[str, ...] = ()  # tokens that end a middle besides EOS (when the vocabulary has them)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(t for t in (self.prefix, self.suffix, self.middle) if t)


FORMATS: tuple[InfillFormat, ...] = (
    # Qwen2.5-Coder, CodeGemma
    InfillFormat("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                 ends=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|file_separator|>")),
    # StarCoder, StarCoder2, Granite Code, SantaCoder
    InfillFormat("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", ends=("<|endoftext|>", "<file_sep>")),
    # CodeLlama (SentencePiece spells its infill tokens with the word-start mark)
    InfillFormat("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", ends=("▁<EOT>",)),
    # DeepSeek-Coder
    InfillFormat("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    # Codestral and other Mistral code models: suffix first, the middle follows the prefix directly
    InfillFormat("mistral", "[PREFIX]", "[SUFFIX]", "", suffix_first=True, ends=("[MIDDLE]",)),
)  # fmt: skip


def infill_format(has_token: Callable[[str], bool]) -> InfillFormat | None:
    """The first family whose tokens all exist in the vocabulary."""
    for fmt in FORMATS:
        if all(has_token(t) for t in fmt.required):
            return fmt
    return None


_ANSWERS: dict[tuple[tuple[str, int, int], ...], dict[str, bool]] = {}  # tokenizer files' state -> answers
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def vocabulary_has(path: Path) -> Callable[[str], bool]:
    """Whether a model directory's tokenizer files name a token, without loading the tokenizer: a token
    is a quoted JSON string in tokenizer.json (vocabulary key or added token) or tokenizer_config.json.

    Capabilities are worked out on every request and a tokenizer.json can be 10 MB, so answers are kept
    per state of the files (path, mtime, size) and the files are read only for a question not yet asked."""
    state = []
    for name in _TOKENIZER_FILES:
        try:
            stat = (path / name).stat()
        except OSError:
            continue
        state.append((str(path / name), stat.st_mtime_ns, stat.st_size))
    key = tuple(state)
    if key not in _ANSWERS and len(_ANSWERS) >= 64:
        del _ANSWERS[next(iter(_ANSWERS))]  # the oldest
    answers = _ANSWERS.setdefault(key, {})
    texts: list[str] | None = None

    def has(token: str) -> bool:
        nonlocal texts
        if token not in answers:
            if texts is None:
                texts = [_read(Path(file)) for file, _, _ in state]
            quoted = {json.dumps(token, ensure_ascii=False), json.dumps(token)}
            answers[token] = any(q in text for q in quoted for text in texts)
        return answers[token]

    return has


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return ""
