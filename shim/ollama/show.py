"""`POST /api/show`: what Ollama reports about a model, derived from the MLX model's own files.

`model_info` uses Ollama's GGUF-style keys, filled from the Hugging Face `config.json` that every MLX model
carries; the Modelfile is regenerated from the manifest as `ollama show --modelfile` prints it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry.model_dir import ModelDirInfo, safetensors_header
from registry.modelfile import Command
from registry.store import StoredModel
from shim.ollama.shapes import details
from shim.timefmt import local_from_ns

# config.json key -> GGUF-style suffix after "<architecture>."
_INFO_KEYS = {
    "max_position_embeddings": "context_length",
    "hidden_size": "embedding_length",
    "num_hidden_layers": "block_count",
    "intermediate_size": "feed_forward_length",
    "num_attention_heads": "attention.head_count",
    "num_key_value_heads": "attention.head_count_kv",
    "rms_norm_eps": "attention.layer_norm_rms_epsilon",
    "rope_theta": "rope.freq_base",
    "vocab_size": "vocab_size",
}


def show_response(
    stored: StoredModel,
    info: ModelDirInfo,
    system: str = "",
    options: dict[str, Any] | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """The request's `system` replaces the model's and its `options` join the parameters, as in Ollama."""
    system = system or stored.system
    parameters = {**stored.parameters, **{k: v for k, v in (options or {}).items() if v is not None}}
    out: dict[str, Any] = {}
    licenses = stored.license or _license_files(info)
    if licenses:
        out["license"] = "\n".join(licenses)
    out["modelfile"] = modelfile(stored, system, parameters)
    if parameters:
        out["parameters"] = parameters_text(parameters)
    template = stored.template or info.chat_template
    if template:
        out["template"] = template
    if system:
        out["system"] = system
    for key in ("renderer", "parser"):
        if stored.manifest.get(key):
            out[key] = stored.manifest[key]
    out["details"] = details(info)
    if stored.messages:
        out["messages"] = stored.messages
    out["model_info"] = model_info(info, verbose)
    out["tensors"] = [{"name": n, "type": t["dtype"], "shape": t["shape"]} for n, t in tensor_headers(info).items()]
    out["capabilities"] = list(stored.capabilities(info))
    out["modified_at"] = local_from_ns(stored.modified_ns)
    if stored.manifest.get("requires"):
        out["requires"] = stored.manifest["requires"]
    return out


def _license_files(info: ModelDirInfo) -> list[str]:
    """A model directory's own LICENSE file(s), when no LICENSE was given at create time."""
    return [p.read_text(errors="replace") for p in sorted(info.path.glob("LICENSE*")) if p.is_file()]


def tensor_headers(info: ModelDirInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for weights in sorted(info.path.glob("*.safetensors")):
        out.update(safetensors_header(weights))
    return out


def model_info(info: ModelDirInfo, verbose: bool = False) -> dict[str, Any]:
    arch = info.family
    config = info.config
    out: dict[str, Any] = {"general.architecture": arch, "general.parameter_count": info.parameter_count}
    for key, suffix in _INFO_KEYS.items():
        if config.get(key) is not None:
            out[f"{arch}.{suffix}"] = config[key]
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    head_dim = config.get("head_dim") or (hidden // heads if heads and hidden else None)
    if head_dim:
        out[f"{arch}.rope.dimension_count"] = head_dim
    out.update(_tokenizer_info(info))
    out.update(_vision_info(arch, config.get("vision_config")))
    for key, value in out.items():  # Ollama hides long arrays unless asked (`verbose`)
        if isinstance(value, list) and len(value) > 5 and not verbose:
            out[key] = None
    return dict(sorted(out.items()))  # Go marshals a map with its keys sorted


def _vision_info(arch: str, vision: Any) -> dict[str, Any]:
    """A merged vision tower's `<arch>.vision.*` keys, as Ollama's GGUF of the same model names them."""
    if not isinstance(vision, dict):
        return {}
    out = {
        f"{arch}.vision.{suffix}": vision[key] for key, suffix in _VISION_KEYS.items() if vision.get(key) is not None
    }
    return out


_VISION_KEYS = {
    "num_hidden_layers": "block_count",
    "hidden_size": "embedding_length",
    "intermediate_size": "feed_forward_length",
    "num_attention_heads": "attention.head_count",
    "image_size": "image_size",
    "patch_size": "patch_size",
    "num_channels": "num_channels",
    "layer_norm_eps": "attention.layer_norm_epsilon",
    # Qwen's towers name their sizes otherwise; Ollama's qwen25vl and qwen3vl read these keys
    "depth": "block_count",
    "num_heads": "attention.head_count",
    "in_channels": "num_channels",
    "spatial_merge_size": "spatial_merge_size",
    "temporal_patch_size": "temporal_patch_size",
}


def _tokenizer_info(info: ModelDirInfo) -> dict[str, Any]:
    """GGUF's tokenizer.ggml.* keys from the Hugging Face tokenizer files the model carries."""
    out: dict[str, Any] = {}
    config = info.config
    for key in ("bos_token_id", "eos_token_id"):
        value = config.get(key)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, int):
            out[f"tokenizer.ggml.{key}"] = value
    tokenizer_config = _read_json(info.path / "tokenizer_config.json")
    for key in ("add_bos_token", "add_eos_token"):
        if isinstance(tokenizer_config.get(key), bool):
            out[f"tokenizer.ggml.{key}"] = tokenizer_config[key]
    tokenizer = _read_json(info.path / "tokenizer.json")
    model = tokenizer.get("model") or {}
    if (info.path / "tokenizer.model").is_file():
        out["tokenizer.ggml.model"] = "llama"
    elif model.get("type") in _TOKENIZER_MODELS:
        out["tokenizer.ggml.model"] = _TOKENIZER_MODELS[model["type"]]
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        by_id = {i: t for t, i in vocab.items()}
        by_id.update({t["id"]: t["content"] for t in tokenizer.get("added_tokens") or []})
        out["tokenizer.ggml.tokens"] = [by_id.get(i, "") for i in range(max(by_id) + 1)] if by_id else []
    merges = model.get("merges")
    if isinstance(merges, list):
        out["tokenizer.ggml.merges"] = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return out


_TOKENIZER_MODELS = {"BPE": "gpt2", "WordPiece": "bert", "Unigram": "t5"}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def modelfile(stored: StoredModel, system: str, parameters: dict[str, Any]) -> str:
    """Ollama's Model.String(): FROM, TEMPLATE, SYSTEM, RENDERER, PARSER, PARAMETERs, LICENSEs, MESSAGEs, each
    value quoted the way its parser reads it back (registry/modelfile.py)."""
    commands = [Command("model", str(stored.model_dir))]
    for name, value in (("template", stored.template), ("system", system)):
        if value:
            commands.append(Command(name, value))
    for name in ("renderer", "parser"):
        if stored.manifest.get(name):
            commands.append(Command(name, str(stored.manifest[name])))
    for name, value in parameters.items():
        commands += [Command(name, _go_value(item)) for item in (value if isinstance(value, list) else [value])]
    commands += [Command("license", text) for text in stored.license]
    commands += [Command("message", f"{m.get('role', '')}: {m.get('content', '')}") for m in stored.messages]
    header = ['# Modelfile generated by "ollama show"', "# To build a new Modelfile based on this, replace FROM with:"]
    return "\n".join([*header, f"# FROM {stored.name.display}", "", *map(str, commands)]) + "\n"


def _go_value(value: Any) -> str:
    """Go's %v for a decoded JSON value: 0.0 prints as 0, booleans in lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parameters_text(parameters: dict[str, Any]) -> str:
    """One line per value: the name padded to 30 columns, then the value as Go's %#v prints it."""
    rows = []
    for name, value in parameters.items():
        for item in value if isinstance(value, list) else [value]:
            shown = json.dumps(item, ensure_ascii=False) if isinstance(item, str) else _go_value(item)
            rows.append(f"{name:<30} {shown}")
    return "\n".join(rows)
