"""`POST /v1/messages` as Ollama serves it: the Anthropic request bound and checked as its middleware does,
converted to a native chat request, checked and prepared by the protocol-neutral service (thinking relaxed),
run on the same engine, answered as Anthropic's message or SSE events through the one streaming loop.

Two error layouts, as in Ollama: what the middleware refuses (`AnthropicError`) goes out through gin's
AbortWithStatusJSON (`application/json; charset=utf-8`, no newline); what the chat handler refuses is
rewritten by the AnthropicWriter (`application/json`, json.Encoder's newline). Both carry Anthropic's error
object.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from shim.anthropic.answers import (
    AnthropicWriter,
    StreamConverter,
    error_body,
    estimate_tokens,
    handler_error,
    message,
    new_id,
)
from shim.anthropic.convert import AnthropicError, bind, chat_request
from shim.engine import collect
from shim.errors import ShimError
from shim.gojson import GoJSONError, decode
from shim.jsonbytes import go_json
from shim.request_body import parsed
from shim.service import ChatRequest, ModelService
from shim.streaming import collected, stream

log = logging.getLogger("mlx_shim")


def _refused(e: AnthropicError) -> Response:
    """The middleware's own 400s (gin's AbortWithStatusJSON)."""
    body = go_json(error_body(e.status, e.message))
    return Response(body, e.status, media_type="application/json; charset=utf-8")


class AnthropicAPI:
    def __init__(self, service: ModelService) -> None:
        self.service = service

    def routes(self) -> list[Route]:
        return [Route("/v1/messages", self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> Response:
        streamed = False  # whether the middleware had set the SSE headers when the handler refused
        try:
            req, native = await parsed(await request.body(), _converted)
            streamed = bool(req.get("stream"))
            return await self.messages(request, req, native)
        except AnthropicError as e:
            return _refused(e)
        except ShimError as e:
            return handler_error(e, streamed)
        except ClientDisconnect:  # the client left mid-body: shim/access_log.py logs it, not a fault
            raise
        except Exception as e:  # a bug must still answer in Anthropic's shape and leave the server up
            log.exception("unexpected error in %s", request.url.path)
            return handler_error(ShimError(str(e) or type(e).__name__))

    async def messages(self, request: Request, req: dict[str, Any], native: ChatRequest) -> Response:
        # Every message may convert to nothing (an empty text): the service then only loads the model, and its
        # answer goes through the same writers as any other.
        prepared = await self.service.prepare_chat(native, relax_thinking=True)
        message_id, model = new_id("msg"), req["model"]
        events = self.service.events(prepared)
        if not req.get("stream"):
            piece, done = await collected(request, collect(events))
            return Response(go_json(message(message_id, model, piece, done)) + b"\n", media_type="application/json")
        return await stream(request, events, AnthropicWriter(StreamConverter(message_id, model, estimate_tokens(req))))


def _converted(body: bytes) -> tuple[dict[str, Any], ChatRequest]:
    """The request as the middleware binds and checks it, and the chat request it converts to (images decoded):
    one step, off the event loop for a large body (shim/request_body.py); what it refuses is an AnthropicError."""
    try:
        data = decode(body)
    except GoJSONError as e:  # an empty body too: gin's binding reports io.EOF as "EOF"
        raise AnthropicError(e.message) from None
    req = bind(data)
    return req, chat_request(req)
