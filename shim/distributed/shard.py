"""One rank's part of a model, as mlx-lm's `sharded_load` makes it: tensor parallel through the model's own
`shard` (llama, qwen2, qwen3, ...), or a pipeline of layers through `model.model.pipeline` (deepseek_v2/v3/v32,
glm4_moe(_lite), ministral3, qwen3_5, qwen2, qwen3_moe, ...) when asked for (MLX_SHIM_PIPELINE, as
`mlx_lm.server --pipeline`) or when the model has nothing else; any other architecture (gemma*, phi3, ...) is
refused. Every rank loads at once and then tells the others how it went (`gather_reports`), so a rank
that cannot load never leaves the others waiting in a collective."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx.utils import tree_reduce

from shim.distributed.wire import gather_reports
from shim.engine import mlx_lm_api

log = logging.getLogger("mlx_shim")


@dataclass
class Shard:
    model: Any
    tokenizer: Any
    split: dict[str, Any]  # what /api/ps reports: backend, ranks, tensor or pipeline, each rank's weight bytes


class ShardError(Exception):
    """This or another rank could not load its part; the message says which and why."""


def load_shard(group: mx.distributed.Group, path: str, *, pipeline: bool = False) -> Shard:
    """Load this rank's part of the model at `path` (the same path on every host), split by layers when
    `pipeline` (rank 0's choice, the same on every rank) and the model can be, or raise ShardError on every
    rank when any rank failed."""
    shard, error = None, ""
    try:
        shard = _load(group, path, pipeline)
    except Exception as e:  # anything: the other ranks must hear of it
        refused = isinstance(e, (ValueError, FileNotFoundError))  # said in its text; other faults get a traceback
        log.error("rank %d: loading %s failed: %s", group.rank(), path, e, exc_info=not refused)
        error = str(e) or type(e).__name__
    reports = gather_reports(group, error, _nbytes(shard.model) if shard is not None else 0)
    for rank, (text, _) in enumerate(reports):
        if text:
            raise ShardError(f"rank {rank} could not load its shard: {text}")
    assert shard is not None
    shard.split["shard_bytes"] = [nbytes for _, nbytes in reports]
    return shard


def _load(group: mx.distributed.Group, path: str, pipeline: bool) -> Shard:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no model files at {path}: every host needs the store at the same path")
    model: Any
    model, tokenizer, config = mlx_lm_api.load_with_config(path, lazy=True)
    kind, ranks = config.get("model_type", "this"), group.size()
    has_pipeline = hasattr(getattr(model, "model", None), "pipeline")
    uneven = uneven_heads(config, ranks)
    if has_pipeline and (pipeline or uneven or not hasattr(model, "shard")):
        layers = len(model.model.layers)
        if layers < ranks:
            heads = f", and {uneven}" if uneven else ""
            raise ValueError(f"{kind} models cannot be split {ranks} ways: its {layers} layers are too few{heads}")
        if uneven and not pipeline:
            log.info("%s: %s; splitting it by layers instead", path, uneven)
        # Each rank keeps its layers (rank 0 the last ones); the last hidden state is gathered to every rank,
        # which all compute the same logits: greedy output is one process's exactly.
        model.model.pipeline(group)
        mode = "pipeline"
    elif uneven and hasattr(model, "shard"):
        raise ValueError(f"{kind} models cannot be split {ranks} ways: {uneven}")
    elif hasattr(model, "shard"):
        try:
            model.shard(group)
        except ValueError as e:  # a quantization group would be split between ranks (small models)
            log.warning("%s: sharding its quantized layers failed (%s); sharding them dequantized", path, e)
            model, tokenizer, config = mlx_lm_api.load_with_config(path, lazy=True)
            model = mlx_lm_api.dequantize_model(model)
            model.shard(group)
        mode = "tensor"
    else:
        raise ValueError(
            f"{kind} models cannot be split across processes: mlx-lm has no tensor or pipeline sharding for them"
        )
    if mx.default_device() == mx.cpu:
        model.set_dtype(mx.float32)  # as the single-process loader: bf16/f16 are slow on MLX's CPU backend
    mx.eval(model.parameters())
    split = {"backend": _backend(), "ranks": group.size(), "parallelism": mode}
    return Shard(model, tokenizer, split)


def uneven_heads(config: dict[str, Any], ranks: int) -> str:
    """Why tensor parallelism cannot split this model's attention heads evenly over `ranks` ("": it can).
    mlx-lm's `shard` divides the head counts by the group's size unchecked: fewer key-value heads than ranks
    would leave a rank with none, and a model that answers garbage."""
    text = config.get("text_config") or config
    heads = text.get("num_attention_heads") or 0
    kv_heads = text.get("num_key_value_heads") or heads
    for count, what in ((heads, "attention"), (kv_heads, "key-value")):
        if isinstance(count, int) and count % ranks:
            return f"its {count} {what} heads do not divide among {ranks} ranks"
    return ""


def _backend() -> str:
    """The launcher's backend, from the environment it set up."""
    if os.environ.get("MLX_JACCL_COORDINATOR"):
        return "jaccl"
    return "nccl" if os.environ.get("NCCL_HOST_IP") else "ring"


def _nbytes(model: Any) -> int:
    return int(tree_reduce(lambda total, array: total + array.nbytes, model.parameters(), 0) or 0)
