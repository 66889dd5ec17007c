"""Loading a sentence-transformers encoder directory (config.json, safetensors, tokenizer, modules.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from tokenizers import Tokenizer

from registry.model_dir import ENCODER_ARCHITECTURES, encoder_context_length
from shim.embedding.bert import BertModel
from shim.embedding.nomic_bert import NomicBertModel
from shim.embedding.pooling import l2_normalize, normalizes, pool, pooling_mode
from shim.engine.mlx_lm_api import infer_quant_config

__all__ = ["ENCODER_ARCHITECTURES", "SentenceEncoder", "load_encoder"]

NETWORKS: dict[str, type[BertModel] | type[NomicBertModel]] = {"bert": BertModel, "nomic_bert": NomicBertModel}


@dataclass
class SentenceEncoder:
    """An encoder model with its tokenizer and the pooling its files declare; `embed` runs a padded batch."""

    network: BertModel | NomicBertModel
    tokenizer: Tokenizer
    pooling: str
    normalize: bool
    context_length: int  # what sentence-transformers truncates at (max_seq_length), special tokens included
    pad_id: int

    def tokenize(self, text: str) -> list[int]:
        """With the model's special tokens ([CLS] ... [SEP]), as sentence-transformers tokenizes."""
        return list(self.tokenizer.encode(text).ids)

    @staticmethod
    def truncate(ids: list[int], length: int) -> list[int]:
        """Keep the closing special token, as a Hugging Face tokenizer truncating to max_length does."""
        return ids[: length - 1] + ids[-1:]

    def embed(self, batch: list[list[int]]) -> np.ndarray:
        longest = max(len(ids) for ids in batch)
        ids = mx.array([row + [self.pad_id] * (longest - len(row)) for row in batch])
        mask = mx.array([[1] * len(row) + [0] * (longest - len(row)) for row in batch])
        vectors = pool(self.network(ids, mask), mask, self.pooling)
        if self.normalize:
            vectors = l2_normalize(vectors)
        return np.array(vectors.astype(mx.float32))


def load_encoder(path: Path) -> SentenceEncoder:
    config = json.loads((path / "config.json").read_text())
    kind = NETWORKS[config["model_type"]]
    network = kind(config)
    weights: dict[str, mx.array] = {}
    for file in sorted(path.glob("*.safetensors")):
        tensors = mx.load(str(file))
        assert isinstance(tensors, dict)  # a .safetensors file loads as a dict of arrays
        weights.update(tensors)
    if mx.default_device() == mx.cpu:  # half precision runs several times slower on MLX's CPU backend
        weights = {k: v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v for k, v in weights.items()}
    weights = kind.sanitize(weights)
    quantization = config.get("quantization") or config.get("quantization_config")
    if quantization:  # mlx-community's 4-bit builds (what the catalog pulls): quantize where the file is
        nn.quantize(
            network,
            group_size=quantization.get("group_size", 64),
            bits=quantization.get("bits", 4),
            mode=quantization.get("mode", "affine"),
            class_predicate=lambda path, module: _stored_quantization(path, module, weights),
        )
    network.load_weights(list(weights.items()), strict=True)
    network.eval()
    mx.eval(network.parameters())
    return SentenceEncoder(
        network=network,
        tokenizer=_tokenizer(path),
        pooling=pooling_mode(path),
        normalize=normalizes(path),
        context_length=encoder_context_length(path, config),
        pad_id=int(config.get("pad_token_id") or 0),
    )


def _stored_quantization(path: str, module: nn.Module, weights: dict[str, mx.array]) -> dict[str, Any] | bool:
    """Quantize a module where the file holds it quantized, at the width and group size it was stored with (read
    from the shapes, as mlx-lm does): GGUF conversions keep each tensor's own width (Q8_0 embeddings beside Q4_0
    layers), so one config-wide width would not fit every module."""
    if not hasattr(module, "to_quantized") or f"{path}.scales" not in weights:
        return False
    return infer_quant_config(path, module, weights)


def _tokenizer(path: Path) -> Tokenizer:
    """tokenizer.json when the model has one, else a WordPiece tokenizer from vocab.txt (older BERT repos)."""
    if (path / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    else:
        from tokenizers import BertWordPieceTokenizer

        settings_file = path / "tokenizer_config.json"
        settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
        wordpiece = BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=settings.get("do_lower_case", True))
        tokenizer = Tokenizer.from_str(wordpiece.to_str())  # the same tokenizer, through public APIs
    tokenizer.no_truncation()  # we truncate ourselves: Ollama's truncate:false must see the full length
    tokenizer.no_padding()
    return tokenizer
