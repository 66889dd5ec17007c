"""A scripted model backend for in-process protocol tests: the service and the adapters run for real, the
model does not. Each `complete` takes its batches from a queue the test fills (so it decides when each
piece arrives), and records that its iterator was closed (how a client leaving cancels the work)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from registry.store import StoredModel
from shim.engine import CompletionRequest, Done, EmbedRequest, EmbedResult, Piece
from shim.engine.loaded import LoadedModel
from shim.engine.stats import EngineStats
from shim.errors import ShimError

Script = list[Piece | Done] | ShimError  # one batch, or the error the backend raises at that point


def done(reason: str = "stop", prompt: int = 3, generated: int = 2) -> Done:
    return Done(reason, prompt, 1_000, generated, 2_000, 0, [1, 2, 3])  # type: ignore[arg-type]


@dataclass
class FakeBackend:
    batches: asyncio.Queue[Script] = field(default_factory=asyncio.Queue)
    requests: list[CompletionRequest] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    unloads: list[str] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, *steps: Script) -> None:
        for step in steps:
            self.batches.put_nowait(step)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def complete(self, req: CompletionRequest) -> AsyncGenerator[list[Piece | Done], None]:
        self.requests.append(req)
        try:
            while True:
                step = await self.batches.get()
                if isinstance(step, ShimError):
                    raise step
                yield step
                if isinstance(step[-1], Done):
                    return
        finally:
            self.closed.set()

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        raise ShimError("the fake backend does not embed")

    async def load(self, stored: StoredModel, keep_alive: float | None) -> None:
        self.loads.append(stored.name.display)

    async def unload(self, stored: StoredModel) -> None:
        self.unloads.append(stored.name.display)

    async def render(self, req: CompletionRequest) -> str:
        return "rendered"

    def loaded(self) -> list[LoadedModel]:
        return []

    def on_gpu(self) -> bool:
        return False

    def stats(self) -> EngineStats:
        return EngineStats()
