"""Tiny embedding GGUFs (bert, nomic-bert) from random shim encoders, named as llama.cpp / Ollama name them.

The shim's modules use their own names; they are mapped to the Hugging Face names here (the inverse of their
sanitize()), then to GGUF names with tables transcribed from Ollama's convert_bert.go Replacements and gguf-py's
tensor_mapping.py nomic-bert entries, so the converter's own tables are not what the test checks against.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from gguf import GGUFWriter
from mlx.utils import tree_flatten

from shim.embedding.bert import BertModel
from shim.embedding.nomic_bert import NomicBertModel
from tests.gguf_tiny import TinyGGUF, _decode, _encode, file_type

BERT_CONFIG = {"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "intermediate_size": 128, "vocab_size": 96, "max_position_embeddings": 128, "type_vocab_size": 2,
               "layer_norm_eps": 1e-12, "hidden_act": "gelu"}  # fmt: skip
NOMIC_CONFIG = {"model_type": "nomic_bert", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_inner": 256,
                "vocab_size": 96, "type_vocab_size": 2, "n_positions": 2048, "layer_norm_epsilon": 1e-12,
                "activation_function": "swiglu", "rotary_emb_fraction": 1.0, "rotary_emb_base": 1000,
                "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False, "prenorm": False}  # fmt: skip

# The inverse of shim/embedding/bert.py's sanitize(): our module -> Hugging Face's, per layer.
_BERT_LAYER_TO_HF = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                     "attention_out": "attention.output.dense", "attention_norm": "attention.output.LayerNorm",
                     "intermediate": "intermediate.dense", "output": "output.dense",
                     "output_norm": "output.LayerNorm"}  # fmt: skip
# Ollama convert_bert.go Replacements (attention.* before the bare output.*).
_BERT_HF_TO_GGUF = [("encoder.layer", "blk"), ("embeddings.word_embeddings", "token_embd"),
                    ("embeddings.token_type_embeddings", "token_types"), ("embeddings.LayerNorm", "token_embd_norm"),
                    ("embeddings.position_embeddings", "position_embd"), ("attention.self.query", "attn_q"),
                    ("attention.self.key", "attn_k"), ("attention.self.value", "attn_v"),
                    ("attention.output.dense", "attn_output"), ("attention.output.LayerNorm", "attn_output_norm"),
                    ("intermediate.dense", "ffn_up"), ("output.dense", "ffn_down"),
                    ("output.LayerNorm", "layer_output_norm")]  # fmt: skip
# gguf-py tensor_mapping.py, nomic-bert: fc11 is FFN_UP, fc12 FFN_GATE, norm1 ATTN_OUT_NORM, norm2 LAYER_OUT_NORM.
_NOMIC_OURS_TO_GGUF = [("word_embeddings", "token_embd"), ("token_type_embeddings", "token_types"),
                       ("emb_ln", "token_embd_norm"), ("layers.", "blk."), (".Wqkv.", ".attn_qkv."),
                       (".out_proj.", ".attn_output."), (".fc11.", ".ffn_up."), (".fc12.", ".ffn_gate."),
                       (".fc2.", ".ffn_down."), (".norm1.", ".attn_output_norm."),
                       (".norm2.", ".layer_output_norm.")]  # fmt: skip


def bert_gguf_name(ours: str) -> str:
    layer = re.fullmatch(r"layers\.(\d+)\.(\w+)\.(weight|bias)", ours)
    if layer:
        name = f"encoder.layer.{layer[1]}.{_BERT_LAYER_TO_HF[layer[2]]}.{layer[3]}"
    else:
        name = ours.replace("embeddings.norm.", "embeddings.LayerNorm.")
    for hf, gguf in _BERT_HF_TO_GGUF:
        name = name.replace(hf, gguf)
    return name


def nomic_gguf_name(ours: str) -> str:
    name = ours
    for theirs, gguf in _NOMIC_OURS_TO_GGUF:
        name = name.replace(theirs, gguf, 1)
    return name


def make_encoder(config: dict[str, Any], seed: int) -> BertModel | NomicBertModel:
    network = BertModel(config) if config["model_type"] == "bert" else NomicBertModel(config)
    rng = np.random.default_rng(seed)
    params = []
    for name, value in tree_flatten(network.parameters()):
        noise = rng.normal(size=value.shape).astype(np.float32)
        params.append((name, mx.array(noise * 0.1 + 1.0 if "norm" in name or "emb_ln" in name else noise * 0.05)))
    network.load_weights(params)
    return network


def _wordpiece_vocab(writer: GGUFWriter, size: int) -> None:
    """A BERT vocabulary in llama.cpp's spelling: whole words carry a leading ▁, ## continuations lose the ##."""
    words = ["hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog"]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"\u2581{w}" for w in words), "s", "ing"]
    tokens += [f"\u2581w{i}" for i in range(size - len(tokens))]
    writer.add_string("tokenizer.ggml.model", "bert")
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_array("tokenizer.ggml.token_type", [3] * 5 + [1] * (len(tokens) - 5))
    for key, value in (("unknown", 1), ("bos", 2), ("seperator", 3), ("padding", 0), ("mask", 4)):
        writer.add_uint32(f"tokenizer.ggml.{key}_token_id", value)


def write_encoder_gguf(
    config: dict[str, Any], qtype: str, path: Path, seed: int = 0, embed_type: str | None = None
) -> TinyGGUF:
    """`embed_type` gives the token embedding another type than the layers (mixed widths in one file)."""
    arch = "bert" if config["model_type"] == "bert" else "nomic-bert"
    network = make_encoder(config, seed)
    rng = np.random.default_rng(seed + 1)
    writer = GGUFWriter(path, arch)
    reference: dict[str, np.ndarray] = {}
    for name, value in tree_flatten(network.parameters()):
        weights = np.array(value, dtype=np.float32)
        target = bert_gguf_name(name) if arch == "bert" else nomic_gguf_name(name)
        if weights.ndim == 1 or target in ("position_embd.weight", "token_types.weight"):
            writer.add_tensor(target, weights)  # Ollama never quantizes these
            reference[name] = weights
            continue
        data, ggml = _encode(weights, embed_type if embed_type and target == "token_embd.weight" else qtype, rng)
        writer.add_tensor(target, data, raw_dtype=ggml if ggml.name not in ("F32", "F16") else None)
        reference[name] = _decode(data, ggml)
    hidden = config.get("hidden_size") or config["n_embd"]
    writer.add_uint32(f"{arch}.block_count", config.get("num_hidden_layers") or config["n_layer"])
    writer.add_uint32(f"{arch}.context_length", config.get("max_position_embeddings") or config["n_positions"])
    writer.add_uint32(f"{arch}.embedding_length", hidden)
    writer.add_uint32(f"{arch}.feed_forward_length", config.get("intermediate_size") or config["n_inner"])
    writer.add_uint32(f"{arch}.attention.head_count", config.get("num_attention_heads") or config["n_head"])
    writer.add_float32(f"{arch}.attention.layer_norm_epsilon", 1e-12)
    writer.add_bool(f"{arch}.attention.causal", False)
    writer.add_uint32(f"{arch}.pooling_type", 1 if arch == "bert" else 2)
    if arch == "nomic-bert":
        writer.add_float32("nomic-bert.rope.freq_base", config["rotary_emb_base"])
    writer.add_uint32("general.file_type", file_type(qtype))
    _wordpiece_vocab(writer, config["vocab_size"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return TinyGGUF(path, config, reference)
