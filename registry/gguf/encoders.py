"""Embedding GGUFs (bert, nomic-bert) as the sentence-transformers directory the shim's encoder loads:
config.json in the keys shim/embedding/bert.py and nomic_bert.py read, plus the pooling and normalisation
files shim/embedding/pooling.py reads (modules.json, 1_Pooling/config.json, sentence_bert_config.json).

The GGUF says how to pool (`<arch>.pooling_type`: 1 mean, 2 cls, 3 last token) and, in Ollama's converter,
whether to normalise (`<arch>.normalize_embeddings`; Ollama defaults it to true for bert, false for nomic-bert).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry.gguf.architectures import Architecture
from registry.gguf.errors import GGUFError
from registry.gguf.metadata import Hyperparameters, clean_float
from registry.gguf.reader import TensorInfo

_POOLING = {0: "mean", 1: "mean", 2: "cls", 3: "lasttoken"}  # 0 (none) has no sentence vector: mean, as ST does
_RANK_POOLING = 4


def encoder_config(arch: Architecture, hp: Hyperparameters, tensors: dict[str, TensorInfo]) -> dict[str, Any]:
    if "token_embd.weight" not in tensors:
        raise GGUFError("the GGUF has no token_embd.weight: it is not a complete model")
    hidden = hp.int("embedding_length")
    vocab = tensors["token_embd.weight"].shape[0]
    types = tensors["token_types.weight"].shape[0] if "token_types.weight" in tensors else 0
    eps = clean_float(hp.float("attention.layer_norm_epsilon", 1e-12))
    if arch.model_type == "bert":
        positions = tensors.get("position_embd.weight")
        if positions is None or not types:
            raise GGUFError("a bert GGUF needs position_embd and token_types tensors")
        return {
            "model_type": "bert",
            "hidden_size": hidden,
            "num_hidden_layers": hp.int("block_count"),
            "num_attention_heads": hp.int("attention.head_count"),
            "intermediate_size": hp.int("feed_forward_length"),
            "vocab_size": vocab,
            "max_position_embeddings": positions.shape[0],
            "type_vocab_size": types,
            "layer_norm_eps": eps,
            "hidden_act": "gelu",
        }
    if "blk.0.ffn_gate.weight" not in tensors:
        raise GGUFError("nomic-bert GGUFs without a gated MLP (ffn_gate) are not supported")
    return {
        "model_type": "nomic_bert",
        "n_embd": hidden,
        "n_head": hp.int("attention.head_count"),
        "n_layer": hp.int("block_count"),
        "n_inner": tensors["blk.0.ffn_up.weight"].shape[0],
        "n_positions": hp.int("context_length"),
        "vocab_size": vocab,
        "type_vocab_size": types,
        "layer_norm_epsilon": eps,
        "activation_function": "swiglu",
        "rotary_emb_fraction": 1.0,
        "rotary_emb_base": clean_float(hp.float("rope.freq_base", 10000.0)),
        "rotary_emb_interleaved": False,
        "qkv_proj_bias": "blk.0.attn_qkv.bias" in tensors,
        "mlp_fc1_bias": "blk.0.ffn_up.bias" in tensors,
        "mlp_fc2_bias": "blk.0.ffn_down.bias" in tensors,
        "prenorm": False,
    }


def pooling(hp: Hyperparameters) -> tuple[str, bool]:
    """(pooling mode, normalise) as the GGUF declares them."""
    kind = hp.int("pooling_type", 1)
    if kind == _RANK_POOLING:
        raise GGUFError("reranker GGUFs (rank pooling) are not supported: they score pairs, not embed texts")
    if kind not in _POOLING:
        raise GGUFError(f"unsupported {hp.arch}.pooling_type {kind}")
    normalize = hp.raw("normalize_embeddings", hp.arch == "bert")
    return _POOLING[kind], bool(normalize)


def write_sentence_transformers_files(target: Path, hp: Hyperparameters, hidden: int, context: int) -> None:
    mode, normalize = pooling(hp)
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (target / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (target / "1_Pooling").mkdir(exist_ok=True)
    flags = {
        "word_embedding_dimension": hidden,
        "pooling_mode": mode,  # what shim/embedding/pooling.py reads first; sentence-transformers accepts it too
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": mode == "lasttoken",
        "include_prompt": True,
    }
    (target / "1_Pooling" / "config.json").write_text(json.dumps(flags, indent=2) + "\n")
    if normalize:
        (target / "2_Normalize").mkdir(exist_ok=True)
    settings = {"max_seq_length": context, "do_lower_case": False}
    (target / "sentence_bert_config.json").write_text(json.dumps(settings, indent=2) + "\n")
