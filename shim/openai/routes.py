"""/v1 endpoints as Ollama serves them: converted to native requests, checked by the native handlers'
code, run on the same engine, answered in OpenAI's shapes (SSE laid out as Ollama v0.24.0 writes it)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from registry.names import InvalidName, ModelName
from shim.engine import CompletionRequest, Done, EngineError, Piece, collect
from shim.gojson import GoJSONError, decode
from shim.jsonbytes import go_json
from shim.ollama import shapes
from shim.ollama.binding import CHAT_COMPLETION, COMPLETION, BindError, Struct
from shim.ollama.routes import ApiError, OllamaAPI
from shim.openai.convert import OpenAIError, chat_request, completion_request
from shim.responses import unless_disconnected
from shim.routing import exact_route

log = logging.getLogger("mlx_shim")

JSON = "application/json"  # Ollama's /v1 answers carry no charset, and end in a newline (json.Encoder)


def openai_error(message: str, status: int) -> Response:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    return Response(go_json({"error": error}) + b"\n", status_code=status, media_type=JSON)


def _json(obj: Any) -> Response:
    return Response(go_json(obj) + b"\n", media_type=JSON)


LOADED = Done("load", 0, 0, 0, 0, 0, [])  # a load-only request's answer: no tokens


async def _answered(done: Done) -> AsyncIterator[list[Piece | Done]]:
    yield [done]


def _finish_reason(done: Done, tool_calls: bool) -> str:
    return "tool_calls" if tool_calls and done.done_reason == "stop" else done.done_reason


def _usage(done: Done) -> dict[str, int]:
    total = done.prompt_eval_count + done.eval_count
    return {"prompt_tokens": done.prompt_eval_count, "completion_tokens": done.eval_count, "total_tokens": total}


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI wants the arguments as a JSON string, where Ollama sends an object."""
    return [
        {"id": c["id"], "index": c["function"]["index"], "type": "function",
         "function": {"name": c["function"]["name"], "arguments": go_json(c["function"]["arguments"]).decode()}}
        for c in calls
    ]  # fmt: skip


def _logprobs(piece: Piece) -> dict[str, Any]:
    """A choice's `logprobs` (omitted when there are none): Ollama's own Logprob objects under `content`."""
    return {"logprobs": {"content": shapes.logprobs(piece.logprobs)}} if piece.logprobs else {}


ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _sse_once(obj: dict[str, Any]) -> Response:
    """Ollama's /v1 writer turning a `_debug_render_only` answer (one unfinished response) into a stream:
    one chunk, no [DONE]."""
    return Response(b"data: " + go_json(obj) + b"\n\n", headers={"Content-Type": "text/event-stream"})


class OpenAIAPI:
    def __init__(self, native: OllamaAPI) -> None:
        self.native = native

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.guarded(self.chat), methods=["POST"]),
            Route("/v1/completions", self.guarded(self.completions), methods=["POST"]),
            exact_route("/v1/models", self.guarded(self.models), methods=["GET"]),
            exact_route("/v1/models/{model:path}", self.guarded(self.model), methods=["GET"]),
        ]

    @staticmethod
    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, OpenAIError) as e:
                return openai_error(e.message, e.status)
            except ClientDisconnect:  # the client left mid-body: shim/access_log.py logs it, not a fault
                raise
            except Exception as e:  # a bug must still answer in OpenAI's shape and leave the server up
                log.exception("unexpected error in %s", request.url.path)
                return openai_error(str(e) or type(e).__name__, 500)

        return endpoint

    @staticmethod
    async def _body(request: Request, struct: Struct) -> dict[str, Any]:
        """The body as sent, once it binds to Ollama's openai struct (Go's type errors are 400s there);
        conversion reads the raw body, which keeps the fields the struct does not name."""
        try:
            body = decode(await request.body())
            struct.bind(body)
        except (GoJSONError, BindError) as e:
            raise OpenAIError(e.message) from None
        return body if isinstance(body, dict) else {}  # a `null` body binds to the zero request

    # -- models ----------------------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        data = [
            {"id": m.name.display, "object": "model", "created": m.modified_ns // 10**9, "owned_by": m.name.namespace}
            for m in self.native.store.list()
        ]
        return _json({"object": "list", "data": data or None})  # Ollama sends null, not [], when empty

    async def model(self, request: Request) -> Response:
        requested = request.path_params["model"]
        try:
            stored = self.native.store.get(ModelName.parse(requested))
        except InvalidName:
            stored = None
        if stored is None:
            raise OpenAIError(f"model '{requested}' not found", 404)
        return _json({"id": requested, "object": "model", "created": stored.modified_ns // 10**9,
                      "owned_by": stored.name.namespace})  # fmt: skip

    # -- completions -----------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        body = await self._body(request, CHAT_COMPLETION)
        native = chat_request(body)
        completion = await self.native.prepare_chat(native)
        assert isinstance(completion, CompletionRequest)  # messages are never empty here
        head = {"id": f"chatcmpl-{random.randrange(999)}", "created": int(time.time()), "model": native["model"]}
        if body.get("_debug_render_only"):
            return await self._chat_debug(body, head, completion)

        if not body.get("stream"):
            piece, done = await self._collect(request, self.native.engine.complete(completion))
            message: dict[str, Any] = {"role": "assistant", "content": piece.content}
            if piece.thinking:
                message["reasoning"] = piece.thinking
            if piece.tool_calls:
                message["tool_calls"] = _tool_calls(piece.tool_calls)
            reason = _finish_reason(done, bool(piece.tool_calls))
            choice = {"index": 0, "message": message, "finish_reason": reason, **_logprobs(piece)}
            return _json({"id": head["id"], "object": "chat.completion", "created": head["created"],
                          "model": head["model"], "system_fingerprint": "fp_ollama", "choices": [choice],
                          "usage": _usage(done)})  # fmt: skip

        def frame(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {"id": head["id"], "object": "chat.completion.chunk", "created": head["created"],
                    "model": head["model"], "system_fingerprint": "fp_ollama", "choices": choices, **extra}  # fmt: skip

        def chunks(piece: Piece) -> list[dict[str, Any]]:
            """A piece with reasoning and content becomes two chunks, reasoning first, as Ollama does."""
            out = []
            if piece.thinking:
                out.append({"role": "assistant", "content": "", "reasoning": piece.thinking})
            if piece.content or piece.tool_calls or not piece.thinking:
                delta: dict[str, Any] = {"role": "assistant", "content": piece.content}
                if piece.tool_calls:
                    delta["tool_calls"] = _tool_calls(piece.tool_calls)
                out.append(delta)
            choices = [{"index": 0, "delta": d, "finish_reason": None} for d in out]
            choices[-1].update(_logprobs(piece))
            return [frame([c]) for c in choices]

        saw_tools = False

        def final(done: Done) -> list[dict[str, Any]]:
            reason = _finish_reason(done, saw_tools)
            out = [frame([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": reason}])]
            if (body.get("stream_options") or {}).get("include_usage"):
                out.append(frame([], usage=_usage(done)))
            return out

        def on_piece(piece: Piece) -> list[dict[str, Any]]:
            nonlocal saw_tools
            saw_tools = saw_tools or bool(piece.tool_calls)
            return chunks(piece)

        return await self._stream(request, self.native.engine.complete(completion), on_piece, final)

    async def completions(self, request: Request) -> Response:
        body = await self._body(request, COMPLETION)
        native = completion_request(body)
        completion = await self.native.prepare_generate(native)
        head = {"id": f"cmpl-{random.randrange(999)}", "created": int(time.time()), "model": native["model"]}
        if isinstance(completion, CompletionRequest):
            if body.get("_debug_render_only"):
                return await self._completion_debug(body, head, completion)
            # Ollama's /v1 writer puts no logprobs into text completions: they are checked, not computed.
            completion = replace(completion, logprobs=None)
        # An empty prompt only loads the model; Ollama's /v1 writer converts that answer like any other.
        batches = _answered(LOADED) if isinstance(completion, dict) else self.native.engine.complete(completion)
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        if not body.get("stream"):
            piece, done = await self._collect(request, batches)
            choice = {"text": piece.content, "index": 0, "finish_reason": done.done_reason}
            return _json({"id": head["id"], "object": "text_completion", "created": head["created"],
                          "model": head["model"], "system_fingerprint": "fp_ollama", "choices": [choice],
                          "usage": _usage(done)})  # fmt: skip

        def frame(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
            out = {"id": head["id"], "object": "text_completion", "created": head["created"], "choices": choices,
                   "model": head["model"], "system_fingerprint": "fp_ollama"}  # fmt: skip
            if include_usage:
                out["usage"] = usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            return out

        def on_piece(piece: Piece) -> list[dict[str, Any]]:
            return [frame([{"text": piece.content, "index": 0, "finish_reason": None}])] if piece.content else []

        def final(done: Done) -> list[dict[str, Any]]:
            out = [frame([{"text": "", "index": 0, "finish_reason": done.done_reason}])]
            return out + ([frame([], _usage(done))] if include_usage else [])

        return await self._stream(request, batches, on_piece, final)

    # -- _debug_render_only ---------------------------------------------------------------------------

    async def _rendered(self, completion: CompletionRequest) -> str:
        try:
            return await self.native.render(completion)
        except ApiError as e:
            raise OpenAIError(e.message, e.status) from None

    async def _chat_debug(self, body: dict[str, Any], head: dict[str, Any], completion: CompletionRequest) -> Response:
        """The native zero ChatResponse through Ollama's writer: a chat.completion with an empty message, no
        finish reason and zero usage, plus `_debug_info` (which a streamed chunk has no field for)."""
        rendered = await self._rendered(completion)
        if body.get("stream"):
            choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            chunk = {"id": head["id"], "object": "chat.completion.chunk", "created": head["created"]}
            return _sse_once({**chunk, "model": head["model"], "system_fingerprint": "fp_ollama", "choices": [choice]})
        choice = {"index": 0, "message": {"role": "", "content": ""}, "finish_reason": None}
        return _json({"id": head["id"], "object": "chat.completion", "created": head["created"],
                      "model": head["model"], "system_fingerprint": "fp_ollama", "choices": [choice],
                      "usage": ZERO_USAGE, "_debug_info": shapes.debug_info(rendered)})  # fmt: skip

    async def _completion_debug(
        self, body: dict[str, Any], head: dict[str, Any], completion: CompletionRequest
    ) -> Response:
        """Ollama's text completion has no `_debug_info` field: the render happens, its text is dropped."""
        await self._rendered(completion)
        choice = {"text": "", "index": 0, "finish_reason": None}
        if body.get("stream"):
            chunk = {"id": head["id"], "object": "text_completion", "created": head["created"], "choices": [choice]}
            return _sse_once({**chunk, "model": head["model"], "system_fingerprint": "fp_ollama"})
        return _json({"id": head["id"], "object": "text_completion", "created": head["created"],
                      "model": head["model"], "system_fingerprint": "fp_ollama", "choices": [choice],
                      "usage": ZERO_USAGE})  # fmt: skip

    # -- running -----------------------------------------------------------------------------------------

    async def _collect(self, request: Request, batches: AsyncIterator[list[Piece | Done]]) -> tuple[Piece, Done]:
        try:
            result = await unless_disconnected(request, collect(batches))
        except EngineError as e:
            raise OpenAIError(e.message, e.status) from None
        if result is None:
            raise OpenAIError("request canceled", 499)
        return result

    async def _stream(
        self,
        request: Request,
        batches: AsyncIterator[list[Piece | Done]],
        on_piece: Callable[[Piece], list[dict[str, Any]]],
        final: Callable[[Done], list[dict[str, Any]]],
    ) -> Response:
        try:
            first = await unless_disconnected(request, anext(batches))
        except EngineError as e:
            return openai_error(e.message, e.status)
        if first is None:  # the client left while the request waited: it was dropped without generating
            raise OpenAIError("request canceled", 499)

        async def frames() -> AsyncIterator[bytes]:
            batch = first
            try:
                while True:
                    objects = [o for e in batch for o in (final(e) if isinstance(e, Done) else on_piece(e))]
                    data = b"".join(b"data: " + go_json(o) + b"\n\n" for o in objects)
                    if isinstance(batch[-1], Done):
                        yield data + b"data: [DONE]\n\n"
                        return
                    if data:
                        yield data
                    batch = await anext(batches)
            except EngineError as e:
                error = {"message": e.message, "type": "api_error", "param": None, "code": None}
                yield b"data: " + go_json({"error": error}) + b"\n\n"
            finally:
                await batches.aclose()

        return StreamingResponse(frames(), headers={"Content-Type": "text/event-stream"})  # no charset, as Ollama
