"""Every built-in catalog entry's architecture loads in the pinned mlx-lm: for each config shape in
registry/catalog_shapes.toml, the sizes are shrunk (hidden, layers, heads, intermediate, vocab, experts) and
every architecture key kept; mlx-lm's own model class for the `model_type` is built with random weights and
runs one forward pass. Nothing is downloaded. One model per distinct shrunk shape keeps it fast."""

from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

import mlx.core as mx
import pytest

from registry.catalog import BUILTIN_CATALOG, Catalog
from registry.model_dir import ENCODER_ARCHITECTURES
from shim.engine import mlx_lm_api

SHAPES_FILE = BUILTIN_CATALOG.with_name("catalog_shapes.toml")
SHAPES: dict[str, dict[str, Any]] = tomllib.loads(SHAPES_FILE.read_text())["shapes"]

# Sizes and what they shrink to; every other key (rope, windows, softcaps, layer patterns, flags) is kept.
SMALL = {
    "intermediate_size": 64,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "vocab_size": 256,
    "vocab_size_per_layer_input": 256,
    "hidden_size_per_layer_input": 16,
    "laurel_rank": 8,
    "q_lora_rank": 32,
    "kv_lora_rank": 32,
}
EXPERTS = ("num_experts", "num_local_experts", "n_routed_experts")
TOP_K = ("num_experts_per_tok", "top_k_experts")
LAYER_PATTERN_KEYS = ("layer_types", "activation_sparsity_pattern", "intermediate_size", "no_rope_layers")


def _layers(config: dict[str, Any]) -> int:
    """Enough layers that each kind the real model has is still there: the shortest prefix of the real pattern
    that holds every layer type (at least two layers: with first_k_dense_replace shrunk to 1, one dense and one
    MoE layer), doubled where the last layers share the first ones' caches."""
    count = 2
    for pattern in ("layer_types", "no_rope_layers"):  # llama4: every fourth layer has no rope
        if isinstance(config.get(pattern), list):
            types = config[pattern]
            count = max(count, max(types.index(t) for t in set(types)) + 1)
    for period in ("sliding_window_pattern", "full_attention_interval"):
        if isinstance(config.get(period), int):
            count = max(count, config[period])
    if config.get("num_kv_shared_layers"):
        count *= 2
    return min(count, config["num_hidden_layers"])


def shrink(config: dict[str, Any]) -> dict[str, Any]:
    """The same architecture at toy sizes. Head dimensions stay (rope and partial-rotary lists depend on them);
    hidden size becomes two heads' worth."""
    small = copy.deepcopy(config)
    if "text_config" in small:
        small["text_config"] = shrink(small["text_config"])
        # gemma3's and gemma4's wrappers pass their own vocab_size (default: the real one) down to the text model
        small["vocab_size"] = small["text_config"]["vocab_size"]
        return small
    layers = _layers(small)
    head_dim = small.get("head_dim") or small["hidden_size"] // small["num_attention_heads"]
    grouped = small.get("num_key_value_heads", small["num_attention_heads"]) != small["num_attention_heads"]
    small.update(num_hidden_layers=layers, num_attention_heads=2, hidden_size=2 * head_dim)
    if "num_key_value_heads" in small:
        small["num_key_value_heads"] = 1 if grouped else 2
    if "num_global_key_value_heads" in small:
        small["num_global_key_value_heads"] = 1
    if "linear_num_key_heads" in small:
        small.update(linear_num_key_heads=1, linear_num_value_heads=2)
    if small.get("num_kv_shared_layers"):
        small["num_kv_shared_layers"] = layers // 2
    if small.get("first_k_dense_replace"):
        small["first_k_dense_replace"] = 1
    if "n_group" in small:
        small.update(n_group=1, topk_group=1)
    for key, size in SMALL.items():
        if isinstance(small.get(key), int) and small[key]:
            small[key] = size
    for key in EXPERTS:
        if small.get(key):
            small[key] = 4
    for key in TOP_K:
        if small.get(key):
            small[key] = min(small[key], 2)  # llama4 routes each token to exactly one expert
    for key in LAYER_PATTERN_KEYS:
        if isinstance(small.get(key), list):
            small[key] = [SMALL.get(key, x) for x in config[key][:layers]]
    return small


def _distinct_shapes() -> dict[str, dict[str, Any]]:
    """Shape name -> its shrunk config, one per distinct shrunk config."""
    seen: dict[str, str] = {}
    for name, shape in SHAPES.items():
        seen.setdefault(json.dumps(shrink(shape["config"]), sort_keys=True), name)
    return {name: json.loads(small) for small, name in seen.items()}


def test_every_entry_names_a_shape_of_its_model_type_and_a_source() -> None:
    catalog = Catalog.load()
    assert len(catalog.models) >= 90
    for key, entry in catalog.models.items():
        assert entry.source == f"https://huggingface.co/{entry.repo}", key
        if entry.model_type in ENCODER_ARCHITECTURES:
            assert not entry.shape, f"{key}: shim/embedding runs encoders, mlx-lm has no shape for them"
            continue
        assert entry.shape in SHAPES, f"{key}: no shape {entry.shape!r}"
        assert SHAPES[entry.shape]["config"]["model_type"] == entry.model_type, key
    for name, shape in SHAPES.items():
        assert shape["source"].startswith("https://huggingface.co/") and shape["source"].endswith("/config.json"), name
    unused = set(SHAPES) - {entry.shape for entry in catalog.models.values()}
    assert not unused, f"shapes no entry uses: {sorted(unused)}"


def test_shrinking_keeps_every_key_and_only_makes_sizes_smaller() -> None:
    for name, shape in SHAPES.items():
        real, small = shape["config"], shrink(shape["config"])
        assert set(small) - set(real) <= ({"vocab_size"} if "text_config" in real else set()), name
        assert set(real) <= set(small), name
        text, small_text = real.get("text_config", real), small.get("text_config", small)
        assert set(small_text) == set(text), name
        assert small_text["num_hidden_layers"] <= text["num_hidden_layers"], name
        assert small_text["hidden_size"] <= text["hidden_size"], name


@pytest.mark.parametrize(("name", "config"), sorted(_distinct_shapes().items()))
def test_the_pinned_mlx_lm_builds_and_runs_the_shape(name: str, config: dict[str, Any]) -> None:
    classes = mlx_lm_api.model_classes(config)
    assert classes is not None, f"{name}: mlx-lm {mlx_lm_api.MLX_LM_VERSION} has no class for {config['model_type']}"
    model_class, args_class = classes
    mx.random.seed(0)  # the same random weights every run
    model = model_class(args_class.from_dict(config))
    logits = model(mx.array([[1, 2, 3, 4, 5]]))
    mx.eval(logits)
    vocab = config.get("text_config", config)["vocab_size"]
    assert logits.shape == (1, 5, vocab), name
    assert bool(mx.isfinite(logits).all()), f"{name}: the forward pass is not finite"
