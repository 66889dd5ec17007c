"""Every supported decoder architecture round-trips: a random mlx-lm model exported to GGUF the way llama.cpp
does (names, Q/K permutation, Gemma +1 norms, Phi3 fusion, metadata), converted back, computes the same logits as
the source model holding the GGUF's (dequantized) weights, and decodes the same greedy tokens.

Tolerance: both models run in float32 (the engine casts to float32 on MLX's CPU backend: `set_dtype`), the
weights are bit-identical, so the logits differ only by summation order: max |Δ| <= 1e-4 · max |logit|.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx_lm.utils import load_model

from registry.gguf import convert_gguf
from tests.gguf_tiny import CONFIGS, WRITABLE, make_model, tiny_decoder

PROMPTS = [[5, 17, 42, 99, 3, 250, 7, 8, 120, 64], [1, 2, 3], [299, 0, 150, 151, 152, 153, 154]]
LOGIT_TOLERANCE = 1e-4


def source_model(arch: str, reference: dict[str, np.ndarray], seed: int = 0) -> nn.Module:
    model = make_model(CONFIGS[arch], seed)
    model.load_weights([(name, mx.array(value)) for name, value in reference.items()])
    return model


def greedy(model: nn.Module, prompt: list[int], steps: int = 6) -> list[int]:
    tokens = list(prompt)
    for _ in range(steps):
        tokens.append(int(mx.argmax(model(mx.array([tokens]))[0, -1]).item()))
    return tokens[len(prompt) :]


def relative_logit_error(converted: nn.Module, source: nn.Module, prompt: list[int]) -> float:
    ours, theirs = np.array(converted(mx.array([prompt]))), np.array(source(mx.array([prompt])))
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("qtype", WRITABLE)
@pytest.mark.parametrize("arch", list(CONFIGS))
def test_architecture_round_trip(arch: str, qtype: str, tmp_path: Path) -> None:
    tiny = tiny_decoder(arch, qtype, tmp_path / "tiny.gguf")
    result = convert_gguf(tiny.path, tmp_path / "model")
    assert result.architecture == arch and result.quantization == qtype
    converted, config = load_model(tmp_path / "model")
    converted.set_dtype(mx.float32)
    source = source_model(arch, tiny.reference)
    for prompt in PROMPTS:
        assert relative_logit_error(converted, source, prompt) <= LOGIT_TOLERANCE
        assert greedy(converted, prompt) == greedy(source, prompt)
    expected = CONFIGS[arch]
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size"):
        assert config[key] == expected[key], key
    assert config["model_type"] == expected["model_type"]


def test_gemma_norms_are_undone_and_llama_rows_unpermuted(tmp_path: Path) -> None:
    """The two llama.cpp transformations, checked on the stored tensors themselves."""
    for arch, probe in (("gemma2", "model.layers.1.pre_feedforward_layernorm.weight"),
                        ("llama", "model.layers.0.self_attn.k_proj.weight")):  # fmt: skip
        tiny = tiny_decoder(arch, "F32", tmp_path / f"{arch}.gguf", seed=3)
        convert_gguf(tiny.path, tmp_path / arch)
        stored = mx.load(str(tmp_path / arch / "model.safetensors"))
        np.testing.assert_array_equal(np.array(stored[probe]), tiny.reference[probe])


def test_config_carries_architecture_specifics(tmp_path: Path) -> None:
    configs = {}
    for arch in ("granite", "gemma2", "gemma3", "qwen3", "phi3"):
        tiny = tiny_decoder(arch, "F32", tmp_path / f"{arch}.gguf", seed=1)
        convert_gguf(tiny.path, tmp_path / arch)
        configs[arch] = json.loads((tmp_path / arch / "config.json").read_text())
    assert configs["granite"]["logits_scaling"] == 2.0 and configs["granite"]["embedding_multiplier"] == 3.0
    assert configs["granite"]["attention_multiplier"] == 0.2 and configs["granite"]["residual_multiplier"] == 0.5
    assert configs["gemma2"]["final_logit_softcapping"] == 30.0 and configs["gemma2"]["query_pre_attn_scalar"] == 16
    assert configs["gemma3"]["sliding_window_pattern"] == 2 and configs["gemma3"]["sliding_window"] == 4
    assert configs["gemma3"]["rope_local_base_freq"] == 10000.0 and "rope_scaling" not in configs["gemma3"]
    assert configs["qwen3"]["head_dim"] == 32
    assert configs["phi3"]["partial_rotary_factor"] == 1.0 and configs["phi3"]["tie_word_embeddings"] is False
    assert "quantization" not in configs["phi3"]  # an F32 GGUF stays float
