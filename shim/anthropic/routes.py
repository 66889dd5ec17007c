"""`POST /v1/messages` as Ollama serves it: the Anthropic request bound and checked as its middleware does,
converted to a native chat request, run on the same engine, answered as Anthropic's message or SSE events.

Two error layouts, as in Ollama: what the middleware refuses goes out through gin's AbortWithStatusJSON
(`application/json; charset=utf-8`, no newline); what the chat handler refuses is rewritten by the
AnthropicWriter (`application/json`, json.Encoder's newline). Both carry Anthropic's error object.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from shim.anthropic.convert import (
    AnthropicError,
    StreamConverter,
    bind,
    chat_request,
    error_body,
    error_object,
    estimate_tokens,
    message,
    new_id,
)
from shim.engine import CompletionRequest, Done, EngineError, collect
from shim.gojson import GoJSONError, decode
from shim.jsonbytes import go_json
from shim.ollama.routes import ApiError, OllamaAPI
from shim.openai.routes import LOADED, _answered
from shim.responses import unless_disconnected

log = logging.getLogger("mlx_shim")

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive"}


def _refused(e: AnthropicError) -> Response:
    """The middleware's own 400s (gin's AbortWithStatusJSON)."""
    body = go_json(error_body(e.status, e.message))
    return Response(body, e.status, media_type="application/json; charset=utf-8")


def _handler_error(message: str, status: int, stream: bool = False) -> Response:
    """An error the chat handler wrote, as the AnthropicWriter re-encodes it (with the SSE headers the
    middleware had already set for a stream, bar the content type)."""
    headers = {k: v for k, v in _SSE_HEADERS.items() if k != "Content-Type"} if stream else None
    body = go_json(error_body(status, message)) + b"\n"
    return Response(body, status, headers=headers, media_type="application/json")


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + go_json(data) + b"\n\n"


class AnthropicAPI:
    def __init__(self, native: OllamaAPI) -> None:
        self.native = native

    def routes(self) -> list[Route]:
        return [Route("/v1/messages", self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> Response:
        stream = False  # whether the middleware had set the SSE headers when the handler refused
        try:
            try:
                body = decode(await request.body())
            except GoJSONError as e:  # an empty body too: gin's binding reports io.EOF as "EOF"
                raise AnthropicError(e.message) from None
            req = bind(body)
            stream = bool(req.get("stream"))
            return await self.messages(request, req)
        except AnthropicError as e:
            return _refused(e)
        except (ApiError, EngineError) as e:
            return _handler_error(e.message, e.status, stream)
        except ClientDisconnect:  # the client left mid-body: shim/access_log.py logs it, not a fault
            raise
        except Exception as e:  # a bug must still answer in Anthropic's shape and leave the server up
            log.exception("unexpected error in %s", request.url.path)
            return _handler_error(str(e) or type(e).__name__, 500)

    async def messages(self, request: Request, req: dict[str, Any]) -> Response:
        native = chat_request(req)
        completion = await self.native.prepare_chat(native, relax_thinking=True)
        message_id = new_id("msg")
        model = req["model"]

        # Every message may convert to nothing (an empty text): the chat handler then only loads the model.
        batches = (
            self.native.engine.complete(completion) if isinstance(completion, CompletionRequest) else _answered(LOADED)
        )
        if not req.get("stream"):
            result = await unless_disconnected(request, collect(batches))
            if result is None:
                return Response(status_code=499)  # the client left: nobody reads this
            piece, done = result
            return Response(go_json(message(message_id, model, piece, done)) + b"\n", media_type="application/json")

        first = await unless_disconnected(request, anext(batches))
        if first is None:
            return Response(status_code=499)
        converter = StreamConverter(message_id, model, estimate_tokens(req))

        async def events() -> AsyncIterator[bytes]:
            batch = first
            try:
                while True:
                    out = b""
                    for e in batch:
                        pairs = converter.process(None, e) if isinstance(e, Done) else converter.process(e)
                        out += b"".join(_event(name, data) for name, data in pairs)
                    if out:
                        yield out
                    if isinstance(batch[-1], Done):
                        return
                    batch = await anext(batches)
            except EngineError as e:  # Ollama's writer drops it silently; Anthropic's own error event says why
                yield _event("error", {"type": "error", "error": error_object(e.status, e.message)})
            finally:
                await batches.aclose()

        return StreamingResponse(events(), headers=_SSE_HEADERS)
