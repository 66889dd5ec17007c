"""The OpenAI protocol's edges as Ollama's openai middleware has them: the body bound to its struct, and a
`ShimError` rendered as OpenAI's error object with the kind's status (in one place, `guarded`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shim.errors import Kind, ShimError
from shim.gobind import BindError, Struct
from shim.gojson import GoJSONError, decode
from shim.jsonbytes import go_json

log = logging.getLogger("mlx_shim")

JSON = "application/json"  # Ollama's /v1 answers carry no charset, and end in a newline (json.Encoder)
SSE = {"Content-Type": "text/event-stream"}  # no charset, as Ollama
Handler = Callable[[Request], Awaitable[Response]]


def json_answer(obj: Any) -> Response:
    return Response(go_json(obj) + b"\n", media_type=JSON)


def error_object(message: str, status: int) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"message": message, "type": kind, "param": None, "code": None}


def error_answer(error: ShimError) -> Response:
    return Response(
        go_json({"error": error_object(error.message, error.status)}) + b"\n", error.status, media_type=JSON
    )


def guarded(handler: Handler) -> Handler:
    """The endpoint answering what `handler` raises in OpenAI's shape; the server keeps serving."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ShimError as e:
            return error_answer(e)
        except ClientDisconnect:  # the client left mid-body: shim/access_log.py logs it, not a fault
            raise
        except Exception as e:  # a bug must still answer in OpenAI's shape and leave the server up
            log.exception("unexpected error in %s", request.url.path)
            return error_answer(ShimError(str(e) or type(e).__name__))

    return endpoint


async def read_body(request: Request, struct: Struct) -> dict[str, Any]:
    """The body as sent, once it binds to Ollama's openai struct (Go's type errors are 400s there);
    conversion reads the raw body, which keeps the fields the struct does not name."""
    try:
        body = decode(await request.body())
        struct.bind(body)
    except (GoJSONError, BindError) as e:
        raise ShimError(e.message, Kind.BAD_INPUT) from None
    return body if isinstance(body, dict) else {}  # a `null` body binds to the zero request
