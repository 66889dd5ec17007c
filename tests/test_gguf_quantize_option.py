"""Ollama's `quantize` on a GGUF source, with Ollama v0.24.0's names, refusals and Q4_K_M/Q4_K_S mixes."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.utils import load_model

from registry.gguf import GGUFError, convert_gguf
from tests.gguf_tiny import CONFIGS, make_model, tiny_decoder

LAYER = "model.layers.{}.{}"


def test_unknown_name_fails_with_ollamas_text_before_reading(tmp_path: Path) -> None:
    with pytest.raises(GGUFError) as error:
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "model", quantize="q4_0")
    assert (
        error.value.message == "unsupported quantization type Q4_0 - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"
    )
    assert list(tmp_path.iterdir()) == []


def test_quantized_source_is_refused_as_ollama_does(tmp_path: Path) -> None:
    tiny = tiny_decoder("llama", "Q4_0", tmp_path / "q4.gguf")
    with pytest.raises(GGUFError, match="^quantization is only supported for F16, BF16 and F32 models$"):
        convert_gguf(tiny.path, tmp_path / "model", quantize="q8_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q4.gguf"]


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def test_q8_0_quantizes_every_matrix_and_no_norm(tmp_path: Path) -> None:
    tiny = tiny_decoder("llama", "F32", tmp_path / "f32.gguf")
    result = convert_gguf(tiny.path, tmp_path / "model", quantize="q8_0")
    assert result.quantization == "Q8_0"
    assert _config(tmp_path / "model")["quantization"] == {"group_size": 32, "bits": 8, "mode": "affine"}
    stored = mx.load(str(tmp_path / "model" / "model.safetensors"))
    assert stored["model.embed_tokens.scales"].dtype == mx.float32  # the source's float dtype
    assert stored["model.norm.weight"].dtype == mx.float32 and "model.norm.scales" not in stored
    converted, _ = load_model(tmp_path / "model")
    source = make_model(CONFIGS["llama"], 0)
    prompt = mx.array([[5, 17, 42, 99, 3, 250, 7]])
    ours, theirs = np.array(converted(prompt)), np.array(source(prompt))
    assert np.abs(ours - theirs).max() <= 0.02 * np.abs(theirs).max()  # 8-bit rounding of every matrix


def test_q4_k_m_keeps_ollamas_mix(tmp_path: Path) -> None:
    """Two layers: llama.cpp's use_more_bits picks layer 1 only (i >= 7n/8); output at Q6_K's 6 bits."""
    tiny = tiny_decoder("llama", "F16", tmp_path / "f16.gguf")
    result = convert_gguf(tiny.path, tmp_path / "model", quantize="Q4_K")  # Ollama's alias of Q4_K_M
    assert result.quantization == "Q4_K_M"
    quantization = _config(tmp_path / "model")["quantization"]
    six = {"group_size": 32, "bits": 6, "mode": "affine"}
    assert quantization == {
        "group_size": 32,
        "bits": 4,
        "mode": "affine",
        "lm_head": six,
        LAYER.format(1, "self_attn.v_proj"): six,
        LAYER.format(1, "mlp.down_proj"): six,
    }
    stored = mx.load(str(tmp_path / "model" / "model.safetensors"))
    assert stored["lm_head.scales"].dtype == mx.float16  # F16 source: float16 scales, as mlx-lm's convert


def test_q4_k_s_and_tied_embeddings(tmp_path: Path) -> None:
    tiny = tiny_decoder("qwen2", "F32", tmp_path / "f32.gguf")  # tied: the embedding is the output matrix
    convert_gguf(tiny.path, tmp_path / "model", quantize="q4_k_s")
    quantization = _config(tmp_path / "model")["quantization"]
    five, six = ({"group_size": 32, "bits": b, "mode": "affine"} for b in (5, 6))
    assert quantization["model.embed_tokens"] == six
    assert quantization[LAYER.format(0, "self_attn.v_proj")] == five  # the first 4 layers' attn_v
    assert quantization[LAYER.format(1, "self_attn.v_proj")] == five
    assert LAYER.format(0, "mlp.down_proj") not in quantization  # layers < n/8 = 0: none


def test_float_targets_and_same_type(tmp_path: Path) -> None:
    tiny = tiny_decoder("llama", "F32", tmp_path / "f32.gguf")
    convert_gguf(tiny.path, tmp_path / "half", quantize="f16")
    stored = mx.load(str(tmp_path / "half" / "model.safetensors"))
    assert stored["model.layers.0.mlp.up_proj.weight"].dtype == mx.float16
    assert stored["model.layers.0.input_layernorm.weight"].dtype == mx.float32  # norms are never touched
    assert "quantization" not in _config(tmp_path / "half")
    same = convert_gguf(tiny.path, tmp_path / "same", quantize="F32")  # the file's own type: nothing changes
    assert same.quantization == "F32"
    assert (tmp_path / "same" / "model.safetensors").read_bytes() == (
        convert_gguf(tiny.path, tmp_path / "plain").target / "model.safetensors"
    ).read_bytes()


def test_rows_mlx_cannot_group_stay_float(tmp_path: Path) -> None:
    config = {**CONFIGS["llama"], "hidden_size": 48, "intermediate_size": 96, "num_attention_heads": 4}
    tiny = tiny_decoder("llama", "F32", tmp_path / "odd.gguf", config=config)
    convert_gguf(tiny.path, tmp_path / "model", quantize="q8_0")
    stored = mx.load(str(tmp_path / "model" / "model.safetensors"))
    assert stored["model.layers.0.mlp.up_proj.weight"].dtype == mx.float32  # 48 columns
    assert stored["model.layers.0.mlp.down_proj.weight"].dtype == mx.uint32  # 96 columns
    load_model(tmp_path / "model")
