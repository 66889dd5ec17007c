"""The engine's hooks for distributed serving, and the one broadcast every step plan travels by.

`Lockstep` is what a single-process engine holds: each hook does nothing more than the engine did before
(load_model loads, a seed is just a seed). Rank 0 of a group holds `leader.Leader`, whose hooks also tell the
other ranks. The hooks sit where the engine changes MLX state, so the engine itself knows nothing of groups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import orjson

from shim.errors import ShimError

if TYPE_CHECKING:
    from registry.store import StoredModel
    from shim.engine.batch import Sequence
    from shim.engine.loaded import LoadedModel
    from shim.engine.types import CompletionRequest

Op = dict[str, Any]  # one step of the plan: {"op": "admit" | "step" | ..., ...}, JSON on the wire


class Lockstep:
    """Single process: nothing to tell anyone."""

    def seed(self, value: int) -> int:
        """The engine seeds MLX's global random state with the returned value."""
        return value

    def load(self, stored: StoredModel, load: Callable[[StoredModel], LoadedModel]) -> LoadedModel:
        return load(stored)

    def unload(self, key: str) -> None:
        """The engine is unloading the model `key`."""

    def admit(self, key: str, req: CompletionRequest, sequence: Sequence) -> None:
        """`sequence` joins the batch of model `key` next (raises ShimError to refuse it)."""

    def step(self, key: str) -> None:
        """The batch of model `key` decodes one step next."""

    def failed(self, error: Exception) -> ShimError:
        """The error a batch step raised, as its requests end with it."""
        return ShimError(str(error) or type(error).__name__)

    def check_embed(self) -> None:
        """Raises ShimError where embeddings cannot run."""


def share(group: mx.distributed.Group, op: Op | None) -> Op:
    """Rank 0 passes the op, every other rank None; every rank gets it back. Two sums over the group (the
    length, then the bytes: the other ranks add zeros), as mlx-lm's server shares a request."""
    data = orjson.dumps(op) if op is not None else b""
    size = int(mx.distributed.all_sum(mx.array(len(data)), group=group, stream=mx.cpu).item())
    payload = mx.array(memoryview(data), dtype=mx.uint8) if op is not None else mx.zeros(size, dtype=mx.uint8)
    received = mx.distributed.all_sum(payload, group=group, stream=mx.cpu)
    mx.eval(received)  # rank 0 too: a sum left lazy would never be joined
    return orjson.loads(bytes(memoryview(received))) if op is None else op


def gather(group: mx.distributed.Group, row: list[int]) -> list[list[int]]:
    """Every rank's `row` of int64s (all of one length), in rank order, on every rank."""
    table = mx.zeros((group.size(), len(row)), dtype=mx.int64)
    table[group.rank()] = mx.array(row, dtype=mx.int64)
    return mx.distributed.all_sum(table, group=group, stream=mx.cpu).tolist()  # type: ignore[return-value]
