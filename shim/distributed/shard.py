"""One rank's part of a model: tensor parallel through the model's own `shard` (llama, qwen2, qwen3, ...),
pipeline through `model.model.pipeline` where mlx-lm has it (deepseek_v2/v3, glm4_moe, ...); any other
architecture is refused. Every rank loads at once and then tells the others how it went (`gather`), so a rank
that cannot load never leaves the others waiting in a collective."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx.utils import tree_reduce

from shim.distributed.wire import gather
from shim.engine import mlx_lm_api

log = logging.getLogger("mlx_shim")
_REASON_BYTES = 240  # each rank's error text, truncated, travels in its row of the gathered table


@dataclass
class Shard:
    model: Any
    tokenizer: Any
    split: dict[str, Any]  # what /api/ps reports: backend, ranks, tensor or pipeline, each rank's weight bytes


class ShardError(Exception):
    """This or another rank could not load its part; the message says which and why."""


def load_shard(group: mx.distributed.Group, path: str) -> Shard:
    """Load this rank's part of the model at `path` (the same path on every host), or raise ShardError on
    every rank when any rank failed."""
    shard, error = None, ""
    try:
        shard = _load(group, path)
    except Exception as e:  # anything: the other ranks must hear of it
        refused = isinstance(e, (ValueError, FileNotFoundError))  # said in its text; other faults get a traceback
        log.error("rank %d: loading %s failed: %s", group.rank(), path, e, exc_info=not refused)
        error = str(e) or type(e).__name__
    nbytes = _nbytes(shard.model) if shard is not None else 0
    reason = error.encode()[:_REASON_BYTES].ljust(_REASON_BYTES, b"\0")
    rows = gather(group, [1 if error else 0, nbytes, *reason])
    for rank, row in enumerate(rows):
        if row[0]:
            text = bytes(row[2:]).rstrip(b"\0").decode(errors="replace")
            raise ShardError(f"rank {rank} could not load its shard: {text}")
    assert shard is not None
    shard.split["shard_bytes"] = [row[1] for row in rows]
    return shard


def _load(group: mx.distributed.Group, path: str) -> Shard:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no model files at {path}: every host needs the store at the same path")
    model: Any
    model, tokenizer, config = mlx_lm_api.load_with_config(path, lazy=True)
    if hasattr(model, "shard"):
        try:
            model.shard(group)
        except ValueError as e:  # a quantization group would be split between ranks (small models)
            log.warning("%s: sharding its quantized layers failed (%s); sharding them dequantized", path, e)
            model, tokenizer, config = mlx_lm_api.load_with_config(path, lazy=True)
            model = mlx_lm_api.dequantize_model(model)
            model.shard(group)
        mode = "tensor"
    elif hasattr(getattr(model, "model", None), "pipeline"):
        model.model.pipeline(group)
        mode = "pipeline"
    else:
        kind = config.get("model_type", "this")
        raise ValueError(
            f"{kind} models cannot be split across processes: mlx-lm has no tensor or pipeline sharding for them"
        )
    if mx.default_device() == mx.cpu:
        model.set_dtype(mx.float32)  # as the single-process loader: bf16/f16 are slow on MLX's CPU backend
    mx.eval(model.parameters())
    split = {"backend": _backend(), "ranks": group.size(), "parallelism": mode}
    return Shard(model, tokenizer, split)


def _backend() -> str:
    """The launcher's backend, from the environment it set up."""
    if os.environ.get("MLX_JACCL_COORDINATOR"):
        return "jaccl"
    return "nccl" if os.environ.get("NCCL_HOST_IP") else "ring"


def _nbytes(model: Any) -> int:
    return int(tree_reduce(lambda total, array: total + array.nbytes, model.parameters(), 0) or 0)
