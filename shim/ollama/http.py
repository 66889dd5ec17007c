"""The Ollama protocol's edges: reading a body through its binder, rendering a `ShimError` as Ollama's
`{"error": ...}` with the kind's status (in one place, `guarded`), and the NDJSON writer its streams use."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shim.errors import Kind, ShimError
from shim.gobind import BindError, TypedStruct
from shim.gojson import EmptyBody, GoJSONError, decode
from shim.jsonbytes import go_json
from shim.request_body import parsed
from shim.responses import NDJSON, error_response

log = logging.getLogger("mlx_shim")

E = TypeVar("E")
T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]


async def read_body(request: Request, struct: TypedStruct[T]) -> T:
    """The body bound to its request struct (images decoded: `images` binds to bytes), off the event loop when
    it is large (shim/request_body.py); a body that is not JSON or does not bind is a 400 with Go's text."""
    return await parsed(await request.body(), partial(_bound, struct))


def _bound(struct: TypedStruct[T], body: bytes) -> T:
    try:
        return struct.bind(decode(body))
    except EmptyBody:
        raise ShimError("missing request body", Kind.BAD_INPUT) from None
    except (GoJSONError, BindError) as e:
        raise ShimError(e.message, Kind.BAD_INPUT) from None


def guarded(handler: Handler) -> Handler:
    """The endpoint answering what `handler` raises in Ollama's shape; the server keeps serving."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ShimError as e:
            return error_response(e.message, e.status)
        except ClientDisconnect:  # the client left mid-body: shim/access_log.py logs it, not a fault
            raise
        except Exception as e:  # a bug must still answer in Ollama's shape and leave the server up
            log.exception("unexpected error in %s", request.url.path)
            return error_response(str(e) or type(e).__name__, 500)

    return endpoint


class NDJSONWriter(Generic[E]):
    """One compact JSON object per line (Ollama's streamResponse): `line` makes an event's object. An error
    before the first line is a whole answer with its status (gin's JSON, or `application/json` without a
    charset for the progress streams, as streamResponse writes its own); after it, one `{"error"}` line."""

    headers = {"Content-Type": NDJSON}

    def __init__(self, line: Callable[[E], dict[str, Any]], *, charset: bool = True) -> None:
        self.line = line
        self.charset = charset

    def frames(self, event: E) -> bytes:
        return go_json(self.line(event)) + b"\n"

    def error_frame(self, error: ShimError) -> bytes:
        return go_json({"error": error.message}) + b"\n"

    def error_response(self, error: ShimError) -> Response:
        if self.charset:
            return error_response(error.message, error.status)
        return Response(go_json({"error": error.message}), error.status, media_type="application/json")
