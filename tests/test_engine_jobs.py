"""The channel between the engine's worker thread and a handler (engine.Job), in-process: what the worker
puts must reach the handler without waiting for a later event."""

from __future__ import annotations

import asyncio
import threading
import time

from shim.engine import Piece
from shim.engine.jobs import Job


def test_a_piece_put_soon_after_another_still_reaches_the_handler() -> None:
    """Pieces close together share a wake-up, but the last of them must not wait for an event that may come
    much later (the model writing a long tool call, a long prefill of a neighbour): it arrives on its own."""

    async def run() -> list[str]:
        job = Job("work", None, keep_alive=0)  # type: ignore[arg-type]
        seen: list[str] = []
        for text in ("a", "b"):
            taking = asyncio.ensure_future(job.take())  # the handler waits for the next events
            await asyncio.sleep(0)
            job.last_wake = time.monotonic()  # as if the loop had just been woken for the piece before
            worker = threading.Thread(target=job.put, args=(Piece(text),))
            worker.start()
            worker.join()
            seen += [e.content for e in await asyncio.wait_for(taking, 2)]  # type: ignore[union-attr]
        return seen

    assert asyncio.run(run()) == ["a", "b"]
