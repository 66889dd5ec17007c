"""The model backend the service runs requests on, as a small Protocol: the MLX engine in the server, a fake
with scripted pieces in the in-process protocol tests (tests/fake_backend.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from registry.store import StoredModel
from shim.engine import CompletionRequest, Done, EmbedRequest, EmbedResult, Piece
from shim.engine.loaded import LoadedModel
from shim.engine.stats import EngineStats


class ModelBackend(Protocol):
    """What `shim.engine.Engine` offers the request path; every call raises `ShimError` for what fails."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def complete(self, req: CompletionRequest) -> AsyncGenerator[list[Piece | Done], None]:
        """Pieces then one Done, in batches of what is ready; closing the iterator early cancels the work."""
        ...

    async def embed(self, req: EmbedRequest) -> EmbedResult: ...

    async def load(self, stored: StoredModel, keep_alive: float | None) -> None: ...

    async def unload(self, stored: StoredModel) -> None: ...

    async def render(self, req: CompletionRequest) -> str:
        """The prompt text `req` would run on (`_debug_render_only`)."""
        ...

    def loaded(self) -> Sequence[LoadedModel]: ...

    def on_gpu(self) -> bool: ...

    def stats(self) -> EngineStats:
        """Queue depth, running sequences, prompt-cache totals (for /metrics; never blocks the engine)."""
        ...
