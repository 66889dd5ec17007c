"""Pooling and normalisation as a sentence-transformers model declares them in its own files.

`modules.json` lists the pipeline (Transformer -> Pooling -> optional Normalize); the Pooling module's
`config.json` says which pooling. Reading them keeps each model's vectors what its authors trained for.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx

POOLING_MODES = ("cls", "mean", "max", "lasttoken")


def pool(hidden: mx.array, mask: mx.array, mode: str) -> mx.array:
    """(batch, length, hidden) states and a 0/1 mask of real tokens -> (batch, hidden); padding never counts."""
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        last = mask.astype(mx.int32).sum(axis=1) - 1
        return mx.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]
    weights = mask[..., None].astype(hidden.dtype)
    if mode == "max":
        return mx.where(weights > 0, hidden, -1e9).max(axis=1)
    return (hidden * weights).sum(axis=1) / mx.maximum(weights.sum(axis=1), 1e-9)


def l2_normalize(x: mx.array) -> mx.array:
    """torch.nn.functional.normalize's rule (what sentence-transformers' Normalize module runs)."""
    return x / mx.maximum(mx.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _modules(model_dir: Path) -> list[dict]:
    path = model_dir / "modules.json"
    return json.loads(path.read_text()) if path.is_file() else []


def pooling_mode(model_dir: Path) -> str:
    """The first mode the Pooling config switches on; else an mlx-embeddings `pooling_config` in config.json
    (how mlx-community conversions without the sentence-transformers files say it); else mean."""
    folder = next((m.get("path", "") for m in _modules(model_dir) if m.get("type", "").endswith("Pooling")), "")
    config_file = model_dir / (folder or "1_Pooling") / "config.json"
    if not config_file.is_file():
        model_config = model_dir / "config.json"
        declared = json.loads(model_config.read_text()).get("pooling_config") if model_config.is_file() else None
        return str(declared.get("pooling_mode", "mean")) if isinstance(declared, dict) else "mean"
    config = json.loads(config_file.read_text())
    if isinstance(config.get("pooling_mode"), str):
        return config["pooling_mode"]
    for mode in POOLING_MODES:
        if config.get(f"pooling_mode_{mode}_token") or config.get(f"pooling_mode_{mode}_tokens"):
            return mode
    return "mean"


def normalizes(model_dir: Path) -> bool:
    return any(m.get("type", "").endswith("Normalize") for m in _modules(model_dir))
