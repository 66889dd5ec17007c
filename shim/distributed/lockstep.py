"""The engine's hooks for distributed serving.

`Lockstep` is what a single-process engine holds: each hook does nothing more than the engine did before
(load_model loads, a seed is just a seed). Rank 0 of a group holds `leader.Leader`, whose hooks also tell the
other ranks. The hooks sit where the engine changes MLX state, so the engine itself knows nothing of groups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shim.errors import ShimError

if TYPE_CHECKING:
    from registry.store import StoredModel
    from shim.engine.batch import ModelBatch, Sequence
    from shim.engine.loaded import LoadedModel
    from shim.engine.types import CompletionRequest


class Lockstep:
    """Single process: nothing to tell anyone."""

    def seed(self, value: int) -> int:
        """The engine seeds MLX's global random state with the returned value."""
        return value

    def share_of(self, nbytes: int) -> int:
        """The part of a model's `nbytes` of weights this process holds."""
        return nbytes

    def load(self, stored: StoredModel, load: Callable[[StoredModel], LoadedModel]) -> LoadedModel:
        return load(stored)

    def unload(self, key: str) -> None:
        """The engine is unloading the model `key`."""

    def admit(self, key: str, req: CompletionRequest, sequence: Sequence) -> None:
        """`sequence` joins the batch of model `key` next (raises ShimError to refuse it)."""

    def step(self, key: str, batch: ModelBatch) -> None:
        """`batch`, of model `key`, decodes one step next."""

    def failed(self, error: Exception) -> ShimError:
        """The error a batch step raised, as its requests end with it."""
        return ShimError(str(error) or type(error).__name__)

    def check_embed(self) -> None:
        """Raises ShimError where embeddings cannot run."""
