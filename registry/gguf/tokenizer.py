"""A GGUF's tokenizer, written back as the Hugging Face files mlx-lm loads (`tokenizer.json`,
`tokenizer_config.json`, `special_tokens_map.json`, `generation_config.json`).

A GGUF carries its tokenizer as `tokenizer.*` metadata in llama.cpp's terms. The tensor converter calls
`write_tokenizer_files` with that metadata and the model directory it is filling; what the vocabulary kinds need
is in vocab_models.py, the text splits of byte-level vocabularies in pretokenize.py, the stop tokens in
end_of_generation.py. A file embedding its original `tokenizer.huggingface.json` gets that file back as it was.
Anything that cannot be rebuilt exactly raises GGUFError naming it: a tokenizer that is almost right is worse than
none, because the model then reads ids it was never trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, processors

from registry.gguf.end_of_generation import end_of_generation_ids, token_id
from registry.gguf.errors import GGUFError
from registry.gguf.pretokenize import PRE_TYPE_FAMILY, byte_level_split
from registry.gguf.vocab_models import byte_level_bpe, sentencepiece_bpe, token_types, wordpiece

SUPPORTED_MODELS = ("gpt2", "llama", "gemma4", "bert")

# llama.cpp's defaults when a file names no such id (llama_vocab::impl::load).
_DEFAULT_IDS: dict[str, dict[str, int]] = {
    "llama": {"bos_token_id": 1, "eos_token_id": 2, "unknown_token_id": 0},
    "bert": {
        "bos_token_id": 101,
        "unknown_token_id": 100,
        "seperator_token_id": 102,
        "padding_token_id": 0,
        "mask_token_id": 103,
    },
}


def _ids(metadata: dict[str, Any], model: str, n_tokens: int) -> dict[str, int | None]:
    """Special token ids: the file's, else llama.cpp's default for the kind."""
    found: dict[str, int | None] = {}
    for key in (
        "bos_token_id",
        "eos_token_id",
        "unknown_token_id",
        "seperator_token_id",
        "padding_token_id",
        "mask_token_id",
    ):
        value = token_id(metadata, key, n_tokens)
        if value is None and key not in metadata:
            default = _DEFAULT_IDS.get(model, {}).get(key)
            value = default if default is not None and default < n_tokens else None
        found[key] = value
    return found


def _flag(metadata: dict[str, Any], key: str, default: bool) -> bool:
    value = metadata.get(f"tokenizer.ggml.{key}")
    return value if isinstance(value, bool) else default


def _template_processor(
    first: str | None, last: str | None, ids: dict[str, int]
) -> processors.TemplateProcessing | None:
    """BOS in front and/or EOS behind each sequence, as llama.cpp adds them when the file says so."""
    if first is None and last is None:
        return None
    head = f"{first}:0 " if first else ""
    tail = f" {last}:0" if last else ""
    pair_head = f" {first}:1" if first else ""
    pair_tail = f" {last}:1" if last else ""
    special = [(t, ids[t]) for t in dict.fromkeys(x for x in (first, last) if x)]
    return processors.TemplateProcessing(
        single=f"{head}$A:0{tail}", pair=f"{head}$A:0{tail}{pair_head} $B:1{pair_tail}", special_tokens=special
    )


def _bert_processor(cls: str, sep: str, ids: dict[str, int]) -> processors.TemplateProcessing:
    return processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
    )


def build_tokenizer(metadata: dict[str, Any]) -> Tokenizer:
    """The `tokenizers` tokenizer a GGUF's metadata describes."""
    model = metadata.get("tokenizer.ggml.model")
    tokens = metadata.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise GGUFError("GGUF has no tokenizer.ggml.tokens")
    embedded = metadata.get("tokenizer.huggingface.json")
    if isinstance(embedded, str) and embedded.strip():
        try:
            return Tokenizer.from_str(embedded)
        except Exception as error:  # noqa: BLE001 - any parse failure means the same to the user
            raise GGUFError(f"GGUF's embedded tokenizer.huggingface.json does not load: {error}") from error
    if model not in SUPPORTED_MODELS:
        raise GGUFError(f"unsupported GGUF tokenizer model {model!r} (supported: {', '.join(SUPPORTED_MODELS)})")
    types = token_types(metadata, len(tokens))
    ids = _ids(metadata, model, len(tokens))
    vocab = {text: index for index, text in enumerate(tokens)}
    bos, eos = ids["bos_token_id"], ids["eos_token_id"]
    if model == "gpt2":
        split = byte_level_split(metadata.get("tokenizer.ggml.pre"))
        tokenizer = byte_level_bpe(tokens, types, metadata.get("tokenizer.ggml.merges") or [], split)
        add_bos_default = PRE_TYPE_FAMILY.get(metadata.get("tokenizer.ggml.pre") or "") in ("llama3", "tekken")
    elif model in ("llama", "gemma4"):
        tokenizer = sentencepiece_bpe(
            tokens,
            types,
            metadata.get("tokenizer.ggml.scores"),
            metadata.get("tokenizer.ggml.merges") if model == "gemma4" else None,
            ids["unknown_token_id"],
            add_space_prefix=_flag(metadata, "add_space_prefix", model == "llama"),
        )
        add_bos_default = True
    else:
        lowercase = _flag(metadata, "normalizer.lowercase", True)
        tokenizer = wordpiece(
            tokens, types, ids["unknown_token_id"], lowercase, _flag(metadata, "normalizer.strip_accents", lowercase)
        )
        cls, sep = ids["bos_token_id"], ids["seperator_token_id"]
        if cls is None or sep is None:
            raise GGUFError("GGUF BERT tokenizer names no [CLS]/[SEP] token (bos_token_id, seperator_token_id)")
        names = tokenizer.get_vocab()
        rebuilt = {index: text for text, index in names.items()}
        tokenizer.post_processor = _bert_processor(rebuilt[cls], rebuilt[sep], names)
        return tokenizer
    first = tokens[bos] if bos is not None and _flag(metadata, "add_bos_token", add_bos_default) else None
    last = tokens[eos] if eos is not None and _flag(metadata, "add_eos_token", False) else None
    tokenizer.post_processor = _template_processor(first, last, vocab)
    return tokenizer


def _clean_up_spaces(pre: str | None) -> bool:
    """transformers' clean_up_tokenization_spaces for a byte-level vocabulary (False for one it cannot name:
    decoding then gives back exactly the text that was encoded)."""
    return (pre or "default") in PRE_TYPE_FAMILY and byte_level_split(pre).clean_up_spaces


def chat_templates(metadata: dict[str, Any]) -> str | list[dict[str, str]] | None:
    """`tokenizer.chat_template`, with the named ones (`tokenizer.chat_template.<name>`, e.g. tool_use) as
    transformers' list form when the file has any."""
    default = metadata.get("tokenizer.chat_template")
    prefix = "tokenizer.chat_template."
    named = {k[len(prefix) :]: v for k, v in metadata.items() if k.startswith(prefix) and isinstance(v, str)}
    if not named:
        return default if isinstance(default, str) else None
    listed = [{"name": "default", "template": default}] if isinstance(default, str) else []
    return listed + [{"name": name, "template": template} for name, template in sorted(named.items())]


def _context_length(metadata: dict[str, Any]) -> int | None:
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length") if isinstance(arch, str) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_tokenizer_files(metadata: dict[str, Any], target: Path) -> None:
    """Write the tokenizer a GGUF's metadata describes into `target` (an existing directory), as the files
    transformers' AutoTokenizer (PreTrainedTokenizerFast) and so mlx-lm's `load` read:

    - tokenizer.json: the rebuilt `tokenizers` tokenizer (ids as the original tokenizer's);
    - tokenizer_config.json: special tokens, add_bos_token/add_eos_token, chat template(s), model_max_length;
    - special_tokens_map.json: the special tokens again, for older readers;
    - generation_config.json: bos/pad ids and every id that ends a generation (llama.cpp's set), eos first.

    Raises GGUFError for a vocabulary kind or pre-tokenizer it cannot rebuild, naming it. Writes nothing then.
    """
    tokenizer = build_tokenizer(metadata)
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    model = str(metadata.get("tokenizer.ggml.model"))
    ids = _ids(metadata, model, len(tokens))
    text_of = {index: text for text, index in tokenizer.get_vocab(with_added_tokens=True).items()}

    def text(key: str) -> str | None:
        index = ids.get(key)
        return text_of.get(index) if index is not None else None

    if model == "bert":
        special = {
            "unk_token": text("unknown_token_id"),
            "sep_token": text("seperator_token_id"),
            "pad_token": text("padding_token_id"),
            "cls_token": text("bos_token_id"),
            "mask_token": text("mask_token_id"),
        }
    else:
        special = {
            "bos_token": text("bos_token_id"),
            "eos_token": text("eos_token_id"),
            "unk_token": text("unknown_token_id"),
            "pad_token": text("padding_token_id"),
        }
    special = {name: value for name, value in special.items() if value is not None}

    config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", **special}
    if model != "bert":  # BERT's own post-processor adds [CLS]/[SEP]; its decode keeps transformers' default
        # The post-processor already adds them; transformers rebuilds the same one from these two flags.
        processor = json.loads(tokenizer.to_str()).get("post_processor") or {}
        single = [part.get("SpecialToken", {}).get("id") for part in processor.get("single", [])]
        config["add_bos_token"] = bool(single) and single[0] is not None
        config["add_eos_token"] = bool(single) and single[-1] is not None
        config["clean_up_tokenization_spaces"] = model == "gpt2" and _clean_up_spaces(
            metadata.get("tokenizer.ggml.pre")
        )
    if (length := _context_length(metadata)) is not None:
        config["model_max_length"] = length
    if (templates := chat_templates(metadata)) is not None:
        config["chat_template"] = templates

    generation: dict[str, Any] | None = None
    if model != "bert":
        stops = end_of_generation_ids(metadata, tokens)
        generation = {
            "bos_token_id": ids["bos_token_id"],
            "eos_token_id": stops[0] if len(stops) == 1 else stops,
            "pad_token_id": ids["padding_token_id"],
        }
        generation = {key: value for key, value in generation.items() if value not in (None, [])}

    tokenizer.save(str(target / "tokenizer.json"))
    _write_json(target / "tokenizer_config.json", config)
    _write_json(target / "special_tokens_map.json", special)
    if generation:
        _write_json(target / "generation_config.json", generation)
