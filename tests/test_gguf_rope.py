"""Rope scaling rebuilt from what GGUFs keep of it: Llama 3's rope_freqs tensor, Phi3's LongRoPE factor tensors,
the rope.scaling.* keys, and the Gemma 3 defaults Ollama applies to files that omit them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models.rope_utils import Llama3RoPE
from mlx_lm.utils import load_model

from registry.gguf import GGUFError, convert_gguf
from registry.gguf.architectures import architecture
from registry.gguf.configs import decoder_config
from registry.gguf.metadata import Hyperparameters
from registry.gguf.reader import TensorInfo
from registry.gguf.rope_scaling import from_metadata, llama3_from_rope_freqs
from tests.gguf_tiny import CONFIGS, make_model, tiny_decoder


def ollama_rope_freqs(
    base: float, dim: int, factor: float, low: float = 1, high: float = 4, original: int = 8192
) -> np.ndarray:
    """convert_llama.go's rope factors (llama.cpp's converter computes the same), as float32 like the file."""
    factors = []
    for i in range(0, dim, 2):
        wavelength = 2 * math.pi * base ** (i / dim)
        if wavelength < original / high:
            factors.append(1.0)
        elif wavelength > original / low:
            factors.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


@pytest.mark.parametrize("factor", [8.0, 32.0])  # Llama 3.1 and Llama 3.2
def test_llama3_parameters_are_recovered(factor: float) -> None:
    tensor = ollama_rope_freqs(500000.0, 128, factor)
    assert llama3_from_rope_freqs(tensor, 500000.0, 128, 8192) == {
        "rope_type": "llama3",
        "factor": factor,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }


def test_other_ramps_are_fitted_and_must_reproduce_the_tensor() -> None:
    tensor = ollama_rope_freqs(500000.0, 128, 16.0, low=2, high=8, original=4096)
    scaling = llama3_from_rope_freqs(tensor, 500000.0, 128, 8192)  # the file does not say 4096
    rope = Llama3RoPE(128, base=500000.0, scaling_config=scaling)
    got = np.array(rope._freqs) / 500000.0 ** (np.arange(0, 128, 2) / 128)
    np.testing.assert_allclose(got, tensor, rtol=1e-4)
    noise = np.random.default_rng(0).uniform(1, 8, size=64).astype(np.float32)
    with pytest.raises(GGUFError, match="cannot rebuild Llama 3 rope scaling from the GGUF's rope_freqs tensor"):
        llama3_from_rope_freqs(noise, 500000.0, 128, 8192)
    assert llama3_from_rope_freqs(np.ones(64, np.float32), 500000.0, 128, 8192) is None


def test_llama3_gguf_converts_with_rope_scaling(tmp_path: Path) -> None:
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}  # fmt: skip
    config = {**CONFIGS["llama"], "hidden_size": 128, "num_attention_heads": 2, "num_key_value_heads": 1,
              "rope_theta": 500000.0, "rope_scaling": scaling}  # fmt: skip
    freqs = {"rope_freqs.weight": ollama_rope_freqs(500000.0, 64, 8.0)}
    tiny = tiny_decoder("llama", "F16", tmp_path / "tiny.gguf", config=config, extra_tensors=freqs)
    result = convert_gguf(tiny.path, tmp_path / "model")
    assert result.tensor_types["F32"] >= 1  # rope_freqs counted, not written
    converted, written = load_model(tmp_path / "model")
    assert written["rope_scaling"] == scaling
    converted.set_dtype(mx.float32)
    source = make_model(config, 0)
    source.load_weights([(k, mx.array(v)) for k, v in tiny.reference.items()])
    prompt = mx.array([[5, 17, 42, 99, 3, 250, 7, 8]])
    ours, theirs = np.array(converted(prompt)), np.array(source(prompt))
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_phi3_longrope_factors_become_config(tmp_path: Path) -> None:
    long, short = [1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0], [1.0, 1.0, 1.125, 1.25, 1.5, 1.5, 2.0, 2.0]
    config = {**CONFIGS["phi3"], "max_position_embeddings": 1024, "original_max_position_embeddings": 256,
              "rope_scaling": {"type": "longrope", "long_factor": long, "short_factor": short}}  # fmt: skip
    tensors = {"rope_factors_long.weight": np.array(long, np.float32),
               "rope_factors_short.weight": np.array(short, np.float32)}  # fmt: skip
    tiny = tiny_decoder("phi3", "Q8_0", tmp_path / "tiny.gguf", config=config, extra_tensors=tensors,
                        extra_metadata={"phi3.rope.scaling.original_context_length": 256})  # fmt: skip
    convert_gguf(tiny.path, tmp_path / "model")
    converted, written = load_model(tmp_path / "model")
    assert written["rope_scaling"] == config["rope_scaling"]
    assert written["original_max_position_embeddings"] == 256 and written["max_position_embeddings"] == 1024
    converted.set_dtype(mx.float32)
    source = make_model(config, 0)
    source.load_weights([(k, mx.array(v)) for k, v in tiny.reference.items()])
    prompt = mx.array([[5, 17, 42, 99, 3]])
    ours, theirs = np.array(converted(prompt)), np.array(source(prompt))
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_rope_scaling_keys() -> None:
    def scaling(**keys: object) -> dict | None:
        return from_metadata(Hyperparameters({f"qwen2.rope.scaling.{k}": v for k, v in keys.items()}, "qwen2"))

    assert scaling() is None and scaling(type="none", factor=4.0) is None
    assert scaling(type="linear", factor=2.0) == {"rope_type": "linear", "factor": 2.0}
    assert scaling(type="yarn", factor=4.0, original_context_length=32768, yarn_beta_fast=32.0) == {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 32768,
        "beta_fast": 32.0,
    }
    with pytest.raises(GGUFError, match="unsupported rope scaling type 'longrope' in qwen2.rope.scaling.type"):
        scaling(type="longrope", factor=4.0)


def _gemma3_config(layers: int, window: int) -> dict:
    """Ollama's gemma3 GGUF keys, as its converter writes them for the multimodal models (no rope scaling)."""
    metadata = {"gemma3.block_count": layers, "gemma3.context_length": 131072, "gemma3.embedding_length": 5376,
                "gemma3.feed_forward_length": 21504, "gemma3.attention.head_count": 32,
                "gemma3.attention.head_count_kv": 16, "gemma3.attention.key_length": 128,
                "gemma3.attention.sliding_window": window, "gemma3.attention.layer_norm_rms_epsilon": 1e-6}  # fmt: skip
    tensors = {"token_embd.weight": TensorInfo("token_embd.weight", "Q4_K", (262208, 5376), 0, 0)}
    return decoder_config(architecture("gemma3"), Hyperparameters(metadata, "gemma3"), tensors, {})


def test_gemma3_defaults_follow_ollama() -> None:
    big = _gemma3_config(62, 1024)
    assert big["rope_scaling"] == {"rope_type": "linear", "factor": 8.0}  # Ollama's correction for 4B/12B/27B
    assert big["query_pre_attn_scalar"] == 168  # 27B scales queries by hidden/heads (5376/32)
    assert big["rope_theta"] == 1_000_000.0 and big["rope_local_base_freq"] == 10_000.0
    assert big["sliding_window_pattern"] == 6 and big["tie_word_embeddings"] is True
    small = _gemma3_config(26, 512)  # the 1B: no rope scaling, queries by head_dim
    assert "rope_scaling" not in small and small["query_pre_attn_scalar"] == 128
    assert json.dumps(big)  # plain JSON values
