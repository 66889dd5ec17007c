"""The one streaming loop and the one collect helper every endpoint answers through.

Each protocol supplies a `Writer` that frames its events (Ollama's NDJSON, OpenAI's chat and text SSE,
Anthropic's named events, create/pull/import progress); what every stream shares is handled here once, as
Ollama's streamResponse does for all of its handlers and middlewares:

- the first event is awaited before anything is sent, so an error there is a whole error answer with its
  own status (the writer's `error_response`), and a client that leaves while the request waits drops it;
- once frames have gone out, an error becomes the writer's in-stream error frame, and the stream ends;
- frames that come out empty are not written; the event iterator is always closed (which cancels the work).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from shim.errors import ShimError, canceled
from shim.responses import Disconnection, EventStream

E = TypeVar("E")
E_contra = TypeVar("E_contra", contravariant=True)
T = TypeVar("T")


class Writer(Protocol[E_contra]):
    """One protocol's framing of a stream of events."""

    headers: dict[str, str]  # the stream's headers, Content-Type included

    def frames(self, event: E_contra) -> bytes:
        """The bytes one event becomes (b"" for none)."""
        ...

    def error_frame(self, error: ShimError) -> bytes:
        """An error after the stream has begun, as the stream's last frame."""
        ...

    def error_response(self, error: ShimError) -> Response:
        """An error before anything was sent, as a whole answer with its own status."""
        ...


class _End:
    """The event iterator ended without another batch."""


_END = _End()


async def stream(request: Request, batches: AsyncGenerator[list[E], None], writer: Writer[E]) -> Response:
    """Answer with `batches` (lists of events that are ready together, written in one send) as `writer`
    frames them; the iterator's own end ends the stream."""
    async with Disconnection(request.receive) as disconnection:
        try:
            first = await anext(batches, _END)
        except ShimError as e:
            return writer.error_response(e)
    if disconnection.left:  # the client left while the request waited: it was dropped without generating
        return writer.error_response(canceled())
    return EventStream(_body(first, batches, writer), writer.headers)


async def _body(
    first: list[E] | _End, batches: AsyncGenerator[list[E], None], writer: Writer[E]
) -> AsyncIterator[bytes]:
    batch = first
    try:
        while not isinstance(batch, _End):
            data = b"".join(writer.frames(event) for event in batch)
            if data:
                yield data
            batch = await anext(batches, _END)
    except ShimError as e:
        yield writer.error_frame(e)
    finally:
        await batches.aclose()


async def collected(request: Request, work: Awaitable[T]) -> T:
    """`work`'s result for a whole (non-streamed) answer; a client that leaves first cancels it."""
    async with Disconnection(request.receive) as disconnection:
        return await work
    assert disconnection.left  # only a departure, swallowed, ends the block without a result
    raise canceled()
