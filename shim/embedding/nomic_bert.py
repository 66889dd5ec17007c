"""Nomic's BERT variant (nomic-embed-text) on `mlx.nn`: rotary positions instead of a position table, a fused
QKV projection, a gated MLP (SwiGLU for nomic-embed-text), post-norm blocks; config keys in GPT-2 style.

Follows Nomic's `modeling_hf_nomic_bert.py` (NomicBertModel without its pooler): embeddings -> emb_ln ->
blocks of `norm1(x + attn(x))`, `norm2(x + mlp(x))`; the rotary embedding rotates halves (GPT-NeoX style)
unless `rotary_emb_interleaved`, and grows its base past `max_trained_positions` when
`rotary_scaling_factor` is set (dynamic NTK).
"""

from __future__ import annotations

import re
from typing import Any

import mlx.core as mx
import mlx.nn as nn

_GATES = {"swiglu": nn.silu, "geglu": nn.gelu, "glu": nn.sigmoid}
_ACTIVATIONS = {
    "gelu": nn.gelu,
    "gelu_new": nn.gelu_approx,
    "gelu_fast": nn.gelu_approx,
    "gelu_pytorch_tanh": nn.gelu_approx,
}


_ALIASES = {"n_embd": "hidden_size", "n_head": "num_attention_heads", "n_layer": "num_hidden_layers",
            "n_inner": "intermediate_size", "n_positions": "max_position_embeddings",
            "layer_norm_epsilon": "layer_norm_eps"}  # fmt: skip


def gpt2_style(config: dict[str, Any]) -> dict[str, Any]:
    """Nomic writes GPT-2 key names; some conversions write BERT's. Either way, GPT-2's names afterwards."""
    return {
        **config,
        **{ours: config[theirs] for ours, theirs in _ALIASES.items() if ours not in config and theirs in config},
    }


class NomicBertLayer(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        if config.get("prenorm"):
            raise ValueError("pre-norm nomic_bert models are not supported")
        hidden, eps = config["n_embd"], config.get("layer_norm_epsilon", 1e-12)
        self.heads = config["n_head"]
        qkv_bias = config.get("qkv_proj_bias", True)
        self.Wqkv = nn.Linear(hidden, 3 * hidden, bias=qkv_bias)
        self.out_proj = nn.Linear(hidden, hidden, bias=qkv_bias)
        activation = config.get("activation_function", "gelu")
        inner = config.get("n_inner") or 4 * hidden
        fc1_bias, fc2_bias = config.get("mlp_fc1_bias", True), config.get("mlp_fc2_bias", True)
        self.gate = _GATES.get(activation)
        if self.gate is not None:
            inner = (inner + 255) // 256 * 256  # Nomic's gated MLP rounds its width up to a multiple of 256
            self.fc11 = nn.Linear(hidden, inner, bias=fc1_bias)
            self.fc12 = nn.Linear(hidden, inner, bias=fc1_bias)
        else:
            self.activation = _ACTIVATIONS[activation]
            self.fc1 = nn.Linear(hidden, inner, bias=fc1_bias)
        self.fc2 = nn.Linear(inner, hidden, bias=fc2_bias)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.rotary_dims = int(hidden // self.heads * config.get("rotary_emb_fraction", 0.0))
        self.interleaved = bool(config.get("rotary_emb_interleaved", False))

    def __call__(self, x: mx.array, mask: mx.array, rotary_base: float) -> mx.array:
        batch, length, hidden = x.shape
        head_dim = hidden // self.heads
        qkv = self.Wqkv(x).reshape(batch, length, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.rotary_dims:
            q = mx.fast.rope(q, self.rotary_dims, traditional=self.interleaved, base=rotary_base, scale=1.0, offset=0)
            k = mx.fast.rope(k, self.rotary_dims, traditional=self.interleaved, base=rotary_base, scale=1.0, offset=0)
        attended = mx.fast.scaled_dot_product_attention(q, k, v, scale=head_dim**-0.5, mask=mask)
        x = self.norm1(x + self.out_proj(attended.transpose(0, 2, 1, 3).reshape(batch, length, hidden)))
        y = self.fc11(x) * self.gate(self.fc12(x)) if self.gate is not None else self.activation(self.fc1(x))
        return self.norm2(x + self.fc2(y))


class NomicBertModel(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        config = gpt2_style(config)
        hidden = config["n_embd"]
        multiple = config.get("pad_vocab_size_multiple", 1)
        vocab = (config["vocab_size"] + multiple - 1) // multiple * multiple
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.type_vocab_size = config.get("type_vocab_size", 2)
        if self.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(self.type_vocab_size, hidden)
        self.rotary = config.get("rotary_emb_fraction", 0.0) > 0
        if not self.rotary:
            self.position_embeddings = nn.Embedding(config.get("n_positions", 512), hidden)
        self.emb_ln = nn.LayerNorm(hidden, eps=config.get("layer_norm_epsilon", 1e-12))
        self.layers = [NomicBertLayer(config) for _ in range(config["n_layer"])]
        self.rotary_base = float(config.get("rotary_emb_base", 10_000))
        self.scaling = config.get("rotary_scaling_factor")
        self.trained_positions = int(config.get("max_trained_positions", 2048))
        self.rotary_dims = self.layers[0].rotary_dims if self.layers else 0

    def __call__(self, ids: mx.array, attention_mask: mx.array) -> mx.array:
        x = self.word_embeddings(ids)
        if self.type_vocab_size > 0:
            x = x + self.token_type_embeddings(mx.zeros_like(ids))
        if not self.rotary:
            x = x + self.position_embeddings(mx.arange(ids.shape[1]))[None]
        x = self.emb_ln(x)
        additive = mx.where(attention_mask[:, None, None, :].astype(mx.bool_), 0.0, -1e9).astype(x.dtype)
        base = self._base(ids.shape[1])
        for layer in self.layers:
            x = layer(x, additive, base)
        return x

    def _base(self, length: int) -> float:
        """Dynamic NTK: past the trained length the rotary base grows, as NomicBertDynamicNTKRotaryEmbedding."""
        if not self.scaling or length <= self.trained_positions:
            return self.rotary_base
        dims = self.rotary_dims
        growth = self.scaling * length / self.trained_positions - (self.scaling - 1)
        return float(self.rotary_base * growth ** (dims / (dims - 2)))

    @staticmethod
    def sanitize(weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Nomic's names -> ours; drops the pooler, the MLM head and buffers."""
        out = {}
        for name, value in weights.items():
            name = name.removeprefix("model.").removeprefix("bert.")
            if name.startswith("embeddings."):
                out[name.removeprefix("embeddings.")] = value
            elif name.startswith("emb_ln."):
                out[name] = value
            elif match := re.match(r"encoder\.layers\.(\d+)\.(?:attn\.|mlp\.)?(.+)", name):
                out[f"layers.{match[1]}.{match[2]}"] = value
        return {k: v for k, v in out.items() if not k.endswith(("position_ids", "inv_freq"))}
