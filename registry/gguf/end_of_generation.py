"""Which token ids end a generation, the way llama.cpp decides it for a GGUF (`special_eog_ids` in
src/llama-vocab.cpp), so a model converted from a GGUF stops where Ollama and llama.cpp stop it.

A GGUF names one `tokenizer.ggml.eos_token_id`, but chat models end their turns with another token
(`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`): llama.cpp adds the file's eot/eom ids, Ollama's own list
(`tokenizer.ggml.eos_token_ids`), the fill-in-the-middle pad/repo/file-separator tokens, and every token whose
text is on its list of end-of-turn names. These ids become generation_config.json's `eos_token_id` list, which
mlx-lm reads as its stop set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Token texts llama.cpp treats as the end of a generation wherever they appear in a vocabulary.
EOG_TEXTS = frozenset(
    {
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
        "<|flush|>",
        "<|calls|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "</s>",
        "<|eom_id|>",
        "<EOT>",
        "_<EOT>",
        "[EOT]",
        "[EOS]",
        "<|end_of_text|>",
        "<end_of_utterance>",
        "<eos>",
        "<turn|>",
        "<|tool_response>",
        "<｜end▁of▁sentence｜>",
        "[e~[",
    }
)

# Found by text when the file names no such id; llama.cpp stops on these fill-in-the-middle tokens too.
FIM_PAD_TEXTS = ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]")
FIM_REPO_TEXTS = ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>")
FIM_SEP_TEXTS = ("<|file_sep|>",)
EOT_TEXTS = (
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
)


def token_id(metadata: dict[str, Any], key: str, n_tokens: int) -> int | None:
    """An id the file names under `tokenizer.ggml.<key>`, if it is a token of the vocabulary."""
    value = metadata.get(f"tokenizer.ggml.{key}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_tokens:
        return None
    return value


def _named_or_found(metadata: dict[str, Any], key: str, texts: Sequence[str], ids: dict[str, int]) -> int | None:
    """The id the file names, else the first vocabulary token with one of the texts (llama.cpp's fallback)."""
    named = token_id(metadata, key, len(ids))
    if named is not None:
        return named
    return next((ids[text] for text in texts if text in ids), None)


def end_of_generation_ids(metadata: dict[str, Any], tokens: Sequence[str]) -> list[int]:
    """The ids that end a generation, eos first, then in id order."""
    ids = {text: index for index, text in enumerate(tokens)}
    eos = token_id(metadata, "eos_token_id", len(tokens))
    found: set[int] = {index for text, index in ids.items() if text in EOG_TEXTS}
    for key, texts in (
        ("eot_token_id", EOT_TEXTS),
        ("eom_token_id", ("<|eom_id|>",)),
        ("fim_pad_token_id", FIM_PAD_TEXTS),
        ("fim_rep_token_id", FIM_REPO_TEXTS),
        ("fim_sep_token_id", FIM_SEP_TEXTS),
    ):
        if (index := _named_or_found(metadata, key, texts, ids)) is not None:
            found.add(index)
    for extra in metadata.get("tokenizer.ggml.eos_token_ids") or ():
        if isinstance(extra, int) and 0 <= extra < len(tokens):
            found.add(extra)
    # gpt-oss (and Solar Open) end a message with <|end|> but a turn with <|return|>/<|call|>: llama.cpp drops it.
    if "<|end|>" in ids and ("<|return|>" in ids and "<|call|>" in ids or "<|calls|>" in ids and "<|flush|>" in ids):
        found.discard(ids["<|end|>"])
    # Gemma 4 (and PaddleOCR): </s> is an ordinary token there.
    if "<|tool_response>" in ids and "</s>" in ids:
        found.discard(ids["</s>"])
    ordered = sorted(found - {eos}) if eos is not None else sorted(found)
    return ([eos] if eos is not None else []) + ordered
