"""What a local MLX model directory is, read from its files: architecture, size, parameters, capabilities.

Everything /api/tags and /api/show report comes from here, so every number is measured from real files
(safetensors headers, byte sizes), never a constant.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.infill import infill_format, vocabulary_has

# Encoder-only architectures: embedding models (mlx-shim runs them with shim/embedding, not mlx-lm).
ENCODER_ARCHITECTURES = ("bert", "nomic_bert")
# Families whose images mlx-shim serves through mlx-vlm beside mlx-lm's decoder (shim/engine/vision_families.py
# says what differs per family, and why Llama 3.2 Vision's cross-attention is not among them).
VISION_ARCHITECTURES = frozenset(
    {"gemma3", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "mistral3", "llava", "llava_next"}
)
# Families no mlx-lm upgrade brings: why, in the words a pull or create of one is refused with.
UNSERVABLE = {
    "mllama": "unsupported architecture 'mllama': Llama 3.2 Vision's decoder reads images through cross-attention "
    "layers, which mlx-lm has no model for (mlx-shim serves vision models on mlx-lm's decoder); pick another "
    "vision model, such as gemma3, qwen2.5vl or mistral-small3.1",
}

# Where Ollama's name for an architecture (GGUF's general.architecture, which clients show as the family)
# differs from the Hugging Face model_type: llama.cpp converts Mistral-style models as llama.
GGUF_ARCHITECTURES = {
    "mistral": "llama",
    "mixtral": "llama",
    "nomic_bert": "nomic-bert",
    "gemma3_text": "gemma3",
    "qwen2_5_vl": "qwen25vl",
    "qwen3_vl": "qwen3vl",
    "qwen3_vl_moe": "qwen3vlmoe",
}


def architecture_refusal(config: dict[str, Any]) -> str | None:
    """Why the installed mlx-lm cannot run a model of this config.json, in words that say what to do; None when
    it can. Pull asks before any weight is downloaded and create before the name is registered, so a model that
    could never load is refused up front instead of failing on its first request."""
    model_type = config.get("model_type")
    if model_type in ENCODER_ARCHITECTURES:
        return None  # an embedding model: shim/embedding runs it, not mlx-lm
    if not isinstance(model_type, str) or not model_type:
        return "config.json names no model_type: it is not a model mlx-lm can load"
    from shim.engine import mlx_lm_api

    if model_type in UNSERVABLE:
        return UNSERVABLE[model_type]
    if mlx_lm_api.model_classes(config) is not None:
        return None
    return (
        f"unsupported architecture '{model_type}': mlx-lm {mlx_lm_api.MLX_LM_VERSION} cannot load it; "
        "upgrade mlx-lm (pip install -U mlx-lm) or pick another model"
    )


class NotAModelDir(ValueError):
    pass


class CorruptModel(NotAModelDir):
    """The files are there but do not read as a model (a truncated or hostile safetensors, a config.json that is
    not an object): the one error for every way parsing them can fail, so a listing can skip just this model."""


@dataclass(frozen=True)
class ModelDirInfo:
    """One model directory's facts. Instances are shared between callers (`cached`): read, never mutate."""

    path: Path
    architecture: str
    size: int
    parameter_count: int
    quantization_level: str
    context_length: int
    embedding_length: int
    chat_template: str
    capabilities: tuple[str, ...]
    config: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> ModelDirInfo:
        try:
            return cls._read(path)
        except (NotAModelDir, OSError):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, MemoryError, struct.error) as e:
            raise CorruptModel(f"cannot read the model in {path}: {type(e).__name__}: {e}") from None

    @classmethod
    def _read(cls, path: Path) -> ModelDirInfo:
        config_file = path / "config.json"
        if not config_file.is_file():
            raise NotAModelDir(f"{path} has no config.json")
        config = json.loads(config_file.read_text())
        if not isinstance(config, dict):
            raise CorruptModel(f"{path / 'config.json'} is not a JSON object")
        weights = sorted(path.glob("*.safetensors"))
        if not weights:
            raise NotAModelDir(f"{path} has no .safetensors weights")
        quant = config.get("quantization") or config.get("quantization_config") or {}
        bits = quant.get("bits")
        template = _chat_template(path)
        architecture = str(config.get("model_type", "unknown"))
        quantization = f"Q{bits}" if bits else str(config.get("torch_dtype", "F32")).upper()
        gguf = config.get("gguf")
        if isinstance(gguf, dict) and isinstance(gguf.get("file_type"), str):
            # converted from a GGUF: its file type, as Ollama reports it (Q4_1, Q4_K_M...); the tensors of the
            # type's own kinds are repacked bit-exactly, others at the same width (registry/gguf)
            quantization = gguf["file_type"]
        context_length = int(config.get("max_position_embeddings") or 0)
        capabilities = _capabilities(path, template, config)
        if architecture in ENCODER_ARCHITECTURES:
            quantization = quantization if bits else _weights_dtype(weights)
            context_length = encoder_context_length(path, config)
            capabilities = ("embedding",)
        return cls(
            path=path,
            architecture=architecture,
            size=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
            parameter_count=sum(_parameter_count(w, quant) for w in weights),
            quantization_level=quantization,
            context_length=context_length,
            embedding_length=int(config.get("hidden_size") or config.get("n_embd") or 0),
            chat_template=template,
            capabilities=capabilities,
            config=config,
        )

    @classmethod
    def cached(cls, path: Path) -> ModelDirInfo:
        """`read(path)`, computed once per state of the directory's files (each one's name, mtime and size):
        /api/tags and every chat ask for it, and reading it means globs, safetensors headers and JSON parses,
        while the state is a few stat calls. A file replaced, added or removed changes the state, so no
        stale answer outlives a change that `read` would see."""
        state = _files_state(path)
        with _CACHE_LOCK:
            hit = _CACHE.get(path)
            if hit is not None and hit[0] == state:
                _CACHE.move_to_end(path)
                return hit[1]
        info = cls.read(path)
        with _CACHE_LOCK:
            _CACHE[path] = (state, info)
            _CACHE.move_to_end(path)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        return info

    @property
    def family(self) -> str:
        """The architecture as Ollama names it (details.family, model_info's general.architecture)."""
        return GGUF_ARCHITECTURES.get(self.architecture, self.architecture)

    @property
    def parameter_size(self) -> str:
        return human_number(self.parameter_count)


_CACHE_SIZE = 1024  # model directories remembered; each entry is one config dict and a template string
_CACHE: OrderedDict[Path, tuple[tuple[tuple[str, int, int], ...], ModelDirInfo]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _files_state(path: Path) -> tuple[tuple[str, int, int], ...]:
    """(relative name, mtime_ns, size) of every file under `path`, following links (a Hugging Face snapshot's
    files are links to its blobs); empty for a missing directory, which `read` then reports."""
    state = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            state.append((os.path.relpath(full, path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(state))


def _chat_template(path: Path) -> str:
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    tokenizer_config = path / "tokenizer_config.json"
    if tokenizer_config.is_file():
        template = json.loads(tokenizer_config.read_text()).get("chat_template") or ""
        if isinstance(template, list):  # named templates: the default one is what chat uses
            template = next((t["template"] for t in template if t.get("name") == "default"), "")
        return str(template)
    return ""


def _capabilities(path: Path, template: str, config: dict[str, Any]) -> tuple[str, ...]:
    """What the server can really do with the model, as the loaded tokenizer will see it: tools when the
    template renders them and we (shim/engine/parsers) or mlx-lm have a parser for the family's calls, insert
    when the tokenizer has a fill-in-the-middle format, thinking when the template and the vocabulary know
    the <think> markers or the family thinks in a channel (harmony)."""
    from shim.engine.parsers import find_family

    has_token = vocabulary_has(path)
    family = find_family(template, has_token)
    caps = ["completion"]
    if "tools" in template and (family is not None or _tool_parser_type(path, template, has_token)):
        caps.append("tools")
    if infill_format(has_token) is not None:
        caps.append("insert")
    if vision_capable(config):
        caps.append("vision")
    if all(tag in template and has_token(tag) for tag in ("<think>", "</think>")) or (family and family.thinking):
        caps.append("thinking")
    return tuple(caps)  # Ollama's order


def vision_capable(config: dict[str, Any]) -> bool:
    """Images are served for a family of VISION_ARCHITECTURES with a vision tower in its config, once mlx-vlm
    is installed (the `vision` extra)."""
    return (
        config.get("model_type") in VISION_ARCHITECTURES
        and isinstance(config.get("vision_config"), dict)
        and importlib.util.find_spec("mlx_vlm") is not None
    )


def _tool_parser_type(path: Path, template: str, has_token: Callable[[str], bool]) -> str | None:
    """The parser mlx-lm's tokenizer loader will pick: tokenizer_config's `tool_parser_type`, else its own
    inference from the template and vocabulary (called, not copied, so the two never disagree)."""
    try:
        named = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("tool_parser_type")
    except (OSError, ValueError, AttributeError):
        named = None
    if named:
        return str(named)
    from shim.engine import mlx_lm_api

    return mlx_lm_api.infer_tool_parser(template, has_token)


def encoder_context_length(path: Path, config: dict[str, Any]) -> int:
    """The longest input the model embeds: sentence-transformers' max_seq_length when the model declares
    one (all-MiniLM-L6-v2: 256 of its 512 positions), else its position table."""
    positions = int(config.get("max_position_embeddings") or config.get("n_positions") or 512)
    settings = path / "sentence_bert_config.json"
    if settings.is_file():
        declared = json.loads(settings.read_text()).get("max_seq_length")
        if declared:
            return min(int(declared), positions)
    return positions


def _weights_dtype(weights: list[Path]) -> str:
    """F32, F16 or BF16: the type most parameters are stored in (what Ollama's details report)."""
    counts: dict[str, int] = {}
    for file in weights:
        for entry in safetensors_header(file).values():
            if entry["dtype"] in ("F32", "F16", "BF16"):
                counts[entry["dtype"]] = counts.get(entry["dtype"], 0) + _count(entry["shape"])
    return max(counts, key=lambda k: counts[k]) if counts else "F32"


def _count(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def safetensors_header(weights: Path) -> dict[str, Any]:
    """Tensor name -> {dtype, shape, data_offsets}, read from the file's JSON header alone."""
    with weights.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        size = weights.stat().st_size
        if length > size - 8:  # read no more than the file holds (a hostile length of 2**62)
            raise CorruptModel(f"{weights.name}: safetensors header of {length} bytes in a file of {size}")
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if 8 + length + end > size:
        raise CorruptModel(f"{weights.name}: truncated: its tensors end at byte {8 + length + end} of {size}")
    return dict(header)


def _parameter_count(weights: Path, quantization: dict) -> int:
    """Count logical parameters from the safetensors header: a quantized U32 matrix packs 32/bits values
    per element (mlx-lm may override bits per layer), and its scales/biases are bookkeeping."""
    header = safetensors_header(weights)
    total = 0
    for name, entry in header.items():
        if name.endswith((".scales", ".biases")) or entry["dtype"] in ("I64", "I32", "I16", "I8", "BOOL"):
            continue  # quantization bookkeeping, and buffers such as BERT's position_ids, are not parameters
        count = 1
        for dim in entry["shape"]:
            count *= dim
        module = name.removesuffix(".weight")
        if entry["dtype"] == "U32" and module + ".scales" in header:
            layer = quantization.get(module)
            bits = layer.get("bits") if isinstance(layer, dict) else quantization.get("bits", 4)
            count = count * 32 // int(bits or 4)
        total += count
    return total


def human_number(n: int) -> str:
    """Ollama's format.HumanNumber: 128704 -> '129K', 494032768 -> '494.03M', 7615616512 -> '7.6B'."""
    for unit, scale, digits in (("B", 1_000_000_000, 1), ("M", 1_000_000, 2)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.{digits}f}{unit}"
    if n >= 1000:
        return f"{n / 1000:.0f}K"
    return str(n)
