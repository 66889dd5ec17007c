"""The OpenAI protocol's edges as Ollama's openai middleware has them: the body bound to its struct, and a
`ShimError` rendered as OpenAI's error object with the kind's status (in one place, `guarded`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import zstandard
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shim.errors import Kind, ShimError
from shim.gobind import BindError, Struct
from shim.gojson import GoJSONError, decode
from shim.jsonbytes import go_json
from shim.request_body import parsed

log = logging.getLogger("mlx_shim")

T = TypeVar("T")

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


async def read_body(request: Request, struct: Struct, convert: Callable[[dict[str, Any]], T]) -> T:
    """`convert` of the body as sent, once it binds to Ollama's openai struct (Go's type errors are 400s there);
    conversion reads the raw body, which keeps the fields the struct does not name. Decoding, binding and
    conversion (images' base64 included) run off the event loop for a large body (shim/request_body.py)."""
    return await parsed(await request.body(), lambda raw: convert(_bound(raw, struct)))


def _bound(raw: bytes, struct: Struct) -> dict[str, Any]:
    try:
        body = decode(raw)
        struct.bind(body)
    except (GoJSONError, BindError) as e:
        raise ShimError(e.message, Kind.BAD_INPUT) from None
    return body if isinstance(body, dict) else {}  # a `null` body binds to the zero request


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_WINDOW = 8 << 20  # zstd.WithDecoderMaxMemory(8<<20): a frame asking for a larger window is refused
_DECOMPRESSED_LIMIT = 20 << 20  # maxDecompressedBodySize, through http.MaxBytesReader


async def decoded_body(request: Request) -> bytes:
    """The body, inflated when sent with `Content-Encoding: zstd` (as Codex sends it to OpenAI; the only
    encoding Ollama's ResponsesMiddleware reads: any other reaches the JSON decoder as it is), with the errors
    Ollama's zstd reader and body limit give. Inflating runs on a worker thread, off the event loop."""
    raw = await request.body()
    if request.headers.get("content-encoding") != "zstd" or not raw:
        return raw
    return await asyncio.to_thread(_inflate, raw)


def _inflate(raw: bytes) -> bytes:
    if not raw.startswith(_ZSTD_MAGIC):
        raise ShimError("invalid input: magic number mismatch", Kind.BAD_INPUT)
    chunks, size = [], 0
    try:
        with zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW).stream_reader(raw, read_across_frames=True) as r:
            while size <= _DECOMPRESSED_LIMIT and (chunk := r.read(1 << 20)):
                chunks.append(chunk)
                size += len(chunk)
    except zstandard.ZstdError as e:
        too_big = "too much memory" in str(e) or "window" in str(e).lower()
        raise ShimError("window size exceeded" if too_big else f"zstd: {e}", Kind.BAD_INPUT) from None
    if size > _DECOMPRESSED_LIMIT:
        raise ShimError("http: request body too large", Kind.BAD_INPUT)
    if not chunks:  # a frame cut short yields nothing: Go's reader says so
        raise ShimError("unexpected EOF", Kind.BAD_INPUT)
    return b"".join(chunks)
