"""config.json for the converted model, from the GGUF's `<arch>.*` metadata and its tensor shapes.

Keys are the ones mlx-lm's ModelArgs (or the shim encoders) read. Where the GGUF is silent, the value is what
llama.cpp/Ollama assume for that architecture when they run the same file (e.g. Gemma's query scaling by layer
count), so the converted model computes what Ollama would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.gguf import rope_scaling
from registry.gguf.architectures import Architecture
from registry.gguf.errors import GGUFError
from registry.gguf.metadata import Hyperparameters, clean_float
from registry.gguf.reader import TensorInfo

# Layer counts llama.cpp and Ollama recognise as the 27B Gemmas, which scale queries by hidden/heads, not head_dim.
_GEMMA2_27B_LAYERS = 46
_GEMMA3_27B_LAYERS = 62
_GEMMA3_SCALED_ROPE_LAYERS = (34, 48, 62)  # Gemma 3 4B/12B/27B: linear rope scaling 8 on global layers


def _common(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo]) -> dict[str, Any]:
    hidden = hp.int("embedding_length")
    heads = hp.int("attention.head_count")
    return {
        "model_type": arch.model_type,
        "hidden_size": hidden,
        "num_hidden_layers": hp.int("block_count"),
        "intermediate_size": hp.int("feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": hp.int("attention.head_count_kv", heads),
        "rms_norm_eps": clean_float(hp.float("attention.layer_norm_rms_epsilon")),
        "vocab_size": tensors["token_embd.weight"].shape[0],
        "max_position_embeddings": hp.int("context_length"),
        "rope_theta": clean_float(hp.float("rope.freq_base", 10000.0)),
        "tie_word_embeddings": "output.weight" not in tensors,
    }


def _head_dim(hp: Hyperparameters, config: dict[str, Any]) -> int:
    return hp.int("attention.key_length", config["hidden_size"] // config["num_attention_heads"])


def _full_rope(hp: Hyperparameters, head_dim: int) -> None:
    rope_dims = hp.int("rope.dimension_count", head_dim)
    if rope_dims != head_dim:
        raise GGUFError(f"partial rotary embeddings ({rope_dims} of {head_dim} dims) are not supported for {hp.arch}")


def _plain_head_dim(hp: Hyperparameters, config: dict[str, Any]) -> None:
    """Models whose mlx-lm class derives head_dim as hidden/heads cannot take another one."""
    if _head_dim(hp, config) != config["hidden_size"] // config["num_attention_heads"]:
        raise GGUFError(f"a {hp.arch} model with head_dim != hidden_size/heads is not supported by mlx-lm's class")


def _rope_scaling(hp: Hyperparameters, head_dim: int, rope: dict[str, np.ndarray]) -> dict[str, Any] | None:
    if "rope_freqs.weight" in rope:
        original = hp.int("rope.scaling.original_context_length", 8192)
        base = hp.float("rope.freq_base", 10000.0)
        return rope_scaling.llama3_from_rope_freqs(rope["rope_freqs.weight"], base, head_dim, original)
    return rope_scaling.from_metadata(hp)


def _llama(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo], rope: dict) -> dict[str, Any]:
    config = _common(arch, hp, tensors)
    head_dim = _head_dim(hp, config)
    _full_rope(hp, head_dim)
    config.update(
        head_dim=head_dim,
        rope_traditional=False,  # the rows were un-permuted: a standard (NEOX-layout) checkpoint
        attention_bias="blk.0.attn_q.bias" in tensors,
        mlp_bias="blk.0.ffn_gate.bias" in tensors,
        rope_scaling=_rope_scaling(hp, head_dim, rope),
    )
    if arch.model_type == "granite":
        _plain_head_dim(hp, config)
        config.update(
            logits_scaling=clean_float(hp.float("logit_scale", 1.0)),
            attention_multiplier=clean_float(hp.float("attention.scale", 1.0 / head_dim**0.5)),
            embedding_multiplier=clean_float(hp.float("embedding_scale", 1.0)),
            residual_multiplier=clean_float(hp.float("residual_scale", 1.0)),
        )
    return config


def _qwen(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo], rope: dict) -> dict[str, Any]:
    config = _common(arch, hp, tensors)
    head_dim = _head_dim(hp, config)
    _full_rope(hp, head_dim)
    if arch.model_type == "qwen2":
        _plain_head_dim(hp, config)
    else:
        config["head_dim"] = head_dim
    config.update(rope_traditional=False, rope_scaling=_rope_scaling(hp, head_dim, rope))
    return config


def _gemma2(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo], rope: dict) -> dict[str, Any]:
    config = _common(arch, hp, tensors)
    head_dim = _head_dim(hp, config)
    big = config["num_hidden_layers"] == _GEMMA2_27B_LAYERS
    config.update(
        head_dim=head_dim,
        attn_logit_softcapping=clean_float(hp.float("attn_logit_softcapping", 50.0)),
        final_logit_softcapping=clean_float(hp.float("final_logit_softcapping", 30.0)),
        query_pre_attn_scalar=config["hidden_size"] // config["num_attention_heads"] if big else head_dim,
    )
    return config


def _sliding_pattern(hp: Hyperparameters, layers: int) -> int:
    """mlx-lm's gemma3 takes a period (every n-th layer global); Ollama writes a per-layer bool list (true = local)."""
    local = hp.raw("attention.sliding_window_pattern", None)
    if not isinstance(local, list) or not local:
        return int(local) if isinstance(local, int) and local > 0 else 6
    period = next((i + 1 for i, is_local in enumerate(local) if not is_local), len(local) + 1)
    if any(bool(is_local) != ((i + 1) % period != 0) for i, is_local in enumerate(local)):
        raise GGUFError(f"gemma3 sliding-window layout {local} has no fixed period, which mlx-lm's gemma3 needs")
    return period


def _gemma3(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo], rope: dict) -> dict[str, Any]:
    config = _common(arch, hp, tensors)
    head_dim = _head_dim(hp, config)
    layers = config["num_hidden_layers"]
    config["rope_theta"] = clean_float(hp.float("rope.freq_base", 1_000_000.0))
    local_base = hp.float("rope.freq_base_swa", None) or hp.float("rope.local.freq_base", 10_000.0)
    window = hp.int("attention.sliding_window", 4096)
    scaling = rope_scaling.from_metadata(hp)
    if scaling is None and window < config["max_position_embeddings"] and layers in _GEMMA3_SCALED_ROPE_LAYERS:
        scaling = {"rope_type": "linear", "factor": 8.0}  # Ollama's correction for GGUFs that omit it
    config.update(
        head_dim=head_dim,
        query_pre_attn_scalar=config["hidden_size"] // config["num_attention_heads"]
        if layers == _GEMMA3_27B_LAYERS
        else head_dim,
        sliding_window=window,
        sliding_window_pattern=_sliding_pattern(hp, layers),
        rope_local_base_freq=clean_float(local_base),
        rope_scaling=scaling,
    )
    return config


def _phi3(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo], rope: dict) -> dict[str, Any]:
    config = _common(arch, hp, tensors)
    _plain_head_dim(hp, config)
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    config.update(
        partial_rotary_factor=hp.int("rope.dimension_count", head_dim) / head_dim,
        original_max_position_embeddings=hp.int("rope.scaling.original_context_length", 4096)
        or config["max_position_embeddings"],
        rope_traditional=False,
        rope_scaling=rope_scaling.longrope(rope.get("rope_factors_long.weight"), rope.get("rope_factors_short.weight")),
    )
    if "blk.0.attn_qkv.weight" not in tensors:
        raise GGUFError("phi3 GGUFs with separate attn_q/attn_k/attn_v are not supported (mlx-lm's phi3 is fused)")
    return config


_BUILDERS = {
    "llama": _llama,
    "granite": _llama,
    "qwen2": _qwen,
    "qwen3": _qwen,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3,
    "phi3": _phi3,
}


def decoder_config(
    arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo], rope: dict[str, np.ndarray]
) -> dict[str, Any]:
    if "token_embd.weight" not in tensors:
        raise GGUFError("the GGUF has no token_embd.weight: it is not a complete model")
    config = _BUILDERS[arch.model_type](arch, hp, tensors, rope)
    return {k: v for k, v in config.items() if v is not None}
