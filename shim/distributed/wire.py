"""The one broadcast every step plan travels by, and the one gather a load reports by: sums over the group on
MLX's collectives (no transport of our own)."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np
import orjson

from shim.engine.mlx_lm_api import generation_stream

Op = dict[str, Any]  # one step of the plan: {"op": "admit" | "step" | ..., ...}, JSON on the wire
_HEADER = 8  # bytes: the op's length
_INLINE = 1016  # bytes of the op that ride with its length in the first sum
_REASON_BYTES = 240  # each rank's error text, truncated, travels in its row of a gathered report


def share(group: mx.distributed.Group, op: Op | None) -> Op:
    """Rank 0 passes the op, every other rank None; every rank gets it back. One sum over the group carries
    the length and the first _INLINE bytes (the other ranks add zeros): a step's op fits, so a token costs one
    collective for its plan; a longer op (an admission's prompt) takes a second sum for the rest."""
    data = orjson.dumps(op) if op is not None else b""
    head = np.zeros(_HEADER + _INLINE, dtype=np.uint8)
    head[:_HEADER] = np.frombuffer(len(data).to_bytes(_HEADER, "little"), dtype=np.uint8)
    head[_HEADER : _HEADER + min(len(data), _INLINE)] = np.frombuffer(data[:_INLINE], dtype=np.uint8)
    summed = np.array(_sum(group, mx.array(head)), copy=False)
    size = int.from_bytes(summed[:_HEADER].tobytes(), "little")
    if size > _INLINE:
        rest = data[_INLINE:] if op is not None else bytes(size - _INLINE)
        tail = _sum(group, mx.array(np.frombuffer(rest, dtype=np.uint8)))
        if op is None:
            return orjson.loads(summed[_HEADER:].tobytes() + np.array(tail, copy=False).tobytes())
    return op if op is not None else orjson.loads(summed[_HEADER : _HEADER + size].tobytes())


def _sum(group: mx.distributed.Group, array: mx.array) -> mx.array:
    """A sum on the stream mlx-lm generates on: a model's own collectives run there, queued ahead of a step's
    result (its next token is evaluated asynchronously); on another stream the two would interleave
    differently on each rank."""
    summed = mx.distributed.all_sum(array, group=group, stream=generation_stream)
    mx.eval(summed)  # rank 0 too: a sum left lazy would never be joined
    return summed


def gather(group: mx.distributed.Group, row: list[int]) -> list[list[int]]:
    """Every rank's `row` of int64s (all of one length), in rank order, on every rank."""
    table = mx.zeros((group.size(), len(row)), dtype=mx.int64)
    table[group.rank()] = mx.array(row, dtype=mx.int64)
    return _sum(group, table).tolist()  # type: ignore[return-value]


def gather_reports(group: mx.distributed.Group, error: str, value: int = 0) -> list[tuple[str, int]]:
    """Every rank's error text ("" when it went well, truncated) and `value`, in rank order, on every rank:
    how a step every rank takes at once (a load, the store check) tells each that another failed."""
    reason = error.encode()[:_REASON_BYTES].ljust(_REASON_BYTES, b"\0")
    rows = gather(group, [value, *reason])
    return [(bytes(row[1:]).rstrip(b"\0").decode(errors="replace"), row[0]) for row in rows]
