"""A BERT encoder on `mlx.nn` (mlx-lm only has decoders): embeddings, post-norm transformer layers, no pooler.

Weights are Hugging Face's `BertModel` safetensors as sentence-transformers models ship them; `sanitize` maps
their names onto these modules, so no conversion step is needed.
"""

from __future__ import annotations

import re
from typing import Any

import mlx.core as mx
import mlx.nn as nn

_ACTIVATIONS = {"gelu": nn.gelu, "gelu_new": nn.gelu_approx, "gelu_pytorch_tanh": nn.gelu_approx, "relu": nn.relu}


class BertEmbeddings(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.norm = nn.LayerNorm(hidden, eps=config.get("layer_norm_eps", 1e-12))

    def __call__(self, ids: mx.array) -> mx.array:
        positions = mx.arange(ids.shape[1])
        types = mx.zeros_like(ids)  # one segment: sentence-transformers encodes single texts
        x = self.word_embeddings(ids) + self.position_embeddings(positions)[None] + self.token_type_embeddings(types)
        return self.norm(x)


class BertLayer(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.heads = config["num_attention_heads"]
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, config["intermediate_size"])
        self.output = nn.Linear(config["intermediate_size"], hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)
        self.activation = _ACTIVATIONS[config.get("hidden_act", "gelu")]

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        batch, length, hidden = x.shape
        head_dim = hidden // self.heads

        def heads(t: mx.array) -> mx.array:
            return t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        attended = mx.fast.scaled_dot_product_attention(q, k, v, scale=head_dim**-0.5, mask=mask)
        attended = attended.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = self.attention_norm(x + self.attention_out(attended))
        return self.output_norm(x + self.output(self.activation(self.intermediate(x))))


class BertModel(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.layers = [BertLayer(config) for _ in range(config["num_hidden_layers"])]

    def __call__(self, ids: mx.array, attention_mask: mx.array) -> mx.array:
        """Final hidden states (batch, length, hidden); padded positions are never attended to."""
        x = self.embeddings(ids)
        additive = mx.where(attention_mask[:, None, None, :].astype(mx.bool_), 0.0, -1e9).astype(x.dtype)
        for layer in self.layers:
            x = layer(x, additive)
        return x

    @staticmethod
    def sanitize(weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Hugging Face names -> ours; drops the pooler, MLM heads and the position_ids buffer."""
        out = {}
        for name, value in weights.items():
            name = (
                name.removeprefix("model.").removeprefix("bert.").replace(".gamma", ".weight").replace(".beta", ".bias")
            )
            if not name.startswith(("embeddings.", "encoder.")) or name.endswith("position_ids"):
                continue
            name = name.replace("embeddings.LayerNorm.", "embeddings.norm.")
            layer = re.match(r"encoder\.layer\.(\d+)\.(.+)", name)
            if layer:
                index, rest = layer.groups()
                for theirs, ours in _LAYER_NAMES.items():
                    if rest.startswith(theirs):
                        rest = ours + rest[len(theirs) :]
                        break
                name = f"layers.{index}.{rest}"
            out[name] = value
        return out


_LAYER_NAMES = {
    "attention.self.query.": "query.",
    "attention.self.key.": "key.",
    "attention.self.value.": "value.",
    "attention.output.dense.": "attention_out.",
    "attention.output.LayerNorm.": "attention_norm.",
    "intermediate.dense.": "intermediate.",
    "output.dense.": "output.",
    "output.LayerNorm.": "output_norm.",
}
