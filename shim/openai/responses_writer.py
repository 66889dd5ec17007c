"""Responses API answers from the engine's events, as Ollama v0.24.0 writes them: `ResponsesStreamConverter`
(the SSE events, in its order, ids and fields) for the one streaming loop, and `ToResponse` (the whole
response object) for `stream: false`.

Go writes the streamed events from maps, so their keys come sorted; the whole response is a struct, so its
fields keep their declared order. Ollama always reports `status: "completed"`, whatever the done reason.
"""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
from starlette.responses import Response

from shim.engine import Done, Piece, ToolCall
from shim.errors import ShimError
from shim.jsonbytes import go_float, go_json
from shim.openai.http import error_answer
from shim.openai.responses_convert import Echo
from shim.openai.writers import tool_calls

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive"}


def new_ids() -> tuple[str, str]:
    """The response's id and its message item's id, as Ollama's middleware draws them."""
    return f"resp_{random.randrange(999999)}", f"msg_{random.randrange(999999)}"


def _raw_json(value: Any) -> orjson.Fragment:
    """A json.RawMessage: written as sent (compacted), never re-sorted."""
    return orjson.Fragment(go_json(value))


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _usage(done: Done) -> dict[str, Any]:
    return {
        "input_tokens": done.prompt_eval_count,
        "output_tokens": done.eval_count,
        "total_tokens": done.prompt_eval_count + done.eval_count,
        "input_tokens_details": {"cached_tokens": 0},  # Ollama does not wire these through
        "output_tokens_details": {"reasoning_tokens": 0},
    }


def _text_format(echo: Echo) -> dict[str, Any]:
    fmt = echo.text_format
    if fmt is None:
        return {"type": "text"}
    out: dict[str, Any] = {"type": fmt.get("type", "")}
    if fmt.get("name"):
        out["name"] = fmt["name"]
    if "schema" in fmt:
        out["schema"] = _raw_json(fmt["schema"])
    if "strict" in fmt:
        out["strict"] = fmt["strict"]
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = tool.get("parameters")
    if parameters is not None:  # a Go map: keys sorted at every level
        parameters = orjson.Fragment(go_json(parameters, sort_keys=True))
    return {"type": tool.get("type", ""), "name": tool.get("name", ""), "description": tool.get("description"),
            "strict": tool.get("strict"), "parameters": parameters}  # fmt: skip


def _response(echo: Echo, response_id: str, status: str, output: list[Any], usage: Any, created: int) -> dict[str, Any]:
    """The response object's fields in ResponsesResponse's order, as both writers fill them."""
    reasoning: dict[str, Any] | None = None
    if echo.effort or echo.summary:
        reasoning = {"effort": echo.effort or None, "summary": echo.summary or None}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "completed_at": None,
        "status": status,
        "incomplete_details": None,
        "model": echo.model,
        "previous_response_id": None,
        "instructions": echo.instructions or None,
        "output": output,
        "error": None,
        "tools": [_tool(t) for t in echo.tools],
        "tool_choice": "auto",
        "truncation": echo.truncation if echo.truncation is not None else "disabled",
        "parallel_tool_calls": True,
        "text": {"format": _text_format(echo)},
        "top_p": go_float(echo.top_p if echo.top_p is not None else 1.0),
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "top_logprobs": 0,
        "temperature": go_float(echo.temperature if echo.temperature is not None else 1.0),
        "reasoning": reasoning,
        "usage": usage,
        "max_output_tokens": echo.max_output_tokens,
        "max_tool_calls": None,
        "store": False,
        "background": echo.background,
        "service_tier": "default",
        "metadata": {},
        "safety_identifier": None,
        "prompt_cache_key": None,
    }


def _function_call(item_id: str, call: dict[str, Any], status: str, arguments: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call["id"],
            "name": call["function"]["name"], "arguments": arguments}  # fmt: skip


def response_object(echo: Echo, response_id: str, item_id: str, piece: Piece, done: Done) -> dict[str, Any]:
    """ToResponse: the whole answer (reasoning, then the function calls or else the message)."""
    output: list[dict[str, Any]] = []
    if piece.thinking:
        summary = [{"type": "summary_text", "text": piece.thinking}]
        output.append({"id": f"rs_{response_id}", "type": "reasoning", "summary": summary,
                       "encrypted_content": piece.thinking})  # fmt: skip
    if piece.tool_calls:
        for i, call in enumerate(tool_calls(piece.tool_calls)):
            output.append(_function_call(f"fc_{response_id}_{i}", call, "completed", call["function"]["arguments"]))
    else:
        output.append({"id": item_id, "type": "message", "status": "completed", "role": "assistant",
                       "content": [_text_part(piece.content)]})  # fmt: skip
    now = int(time.time())
    out = _response(echo, response_id, "completed", output, _usage(done), now)
    out["completed_at"] = now
    if out["reasoning"] is not None:  # a struct with omitempty pointers here
        out["reasoning"] = {k: v for k, v in out["reasoning"].items() if v is not None}
    return out


class ResponsesWriter:
    """The stream's named events: response.created and response.in_progress first; reasoning as one item with
    summary deltas; each tool call as a whole item; text as one message item with output_text deltas (none
    once tools were called); the closing events and response.completed at Done."""

    headers = HEADERS

    def __init__(self, echo: Echo, response_id: str, item_id: str) -> None:
        self.echo = echo
        self.response_id = response_id
        self.item_id = item_id
        self.sequence = 0
        self.started = False
        self.output_index = 0
        self.text: list[str] = []
        self.text_started = False
        self.tools_sent = False
        self.tool_items: list[dict[str, Any]] = []
        self.thinking: list[str] = []
        self.reasoning_id = ""
        self.reasoning_done = False

    def _event(self, kind: str, **data: Any) -> bytes:
        data["type"] = kind
        data["sequence_number"] = self.sequence
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + go_json(data, sort_keys=True) + b"\n\n"

    def _response(self, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        return _response(self.echo, self.response_id, status, output, usage, int(time.time()))

    def frames(self, event: Piece | Done) -> bytes:
        out = []
        if not self.started:
            self.started = True
            out.append(self._event("response.created", response=self._response("in_progress", [], None)))
            out.append(self._event("response.in_progress", response=self._response("in_progress", [], None)))
        if isinstance(event, Done):
            out += self._completion(event)
            return b"".join(out)
        if event.thinking:
            out += self._thinking(event.thinking)
        if event.tool_calls:
            out += self._tool_calls(event.tool_calls)
            self.tools_sent = True
        elif not self.tools_sent and event.content:
            out += self._text(event.content)
        return b"".join(out)

    def _thinking(self, thinking: str) -> list[bytes]:
        out = []
        if not self.reasoning_id:
            self.reasoning_id = f"rs_{random.randrange(999999)}"
            item = {"id": self.reasoning_id, "type": "reasoning", "summary": []}
            out.append(self._event("response.output_item.added", output_index=self.output_index, item=item))
        self.thinking.append(thinking)
        out.append(self._event("response.reasoning_summary_text.delta", item_id=self.reasoning_id,
                               output_index=self.output_index, summary_index=0, delta=thinking))  # fmt: skip
        return out

    def _reasoning_item(self) -> dict[str, Any]:
        text = "".join(self.thinking)
        return {"id": self.reasoning_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}],
                "encrypted_content": text}  # fmt: skip

    def _finish_reasoning(self) -> list[bytes]:
        if not self.reasoning_id or self.reasoning_done:
            return []
        self.reasoning_done = True
        index = self.output_index
        self.output_index += 1
        return [
            self._event(
                "response.reasoning_summary_text.done",
                item_id=self.reasoning_id,
                output_index=index,
                summary_index=0,
                text="".join(self.thinking),
            ),  # fmt: skip
            self._event("response.output_item.done", output_index=index, item=self._reasoning_item()),
        ]

    def _tool_calls(self, calls: list[ToolCall]) -> list[bytes]:
        out = self._finish_reasoning()
        for i, call in enumerate(tool_calls(calls)):
            item_id, index = f"fc_{random.randrange(999999)}_{i}", self.output_index + i  # Ollama never advances it
            arguments = call["function"]["arguments"]
            self.tool_items.append(_function_call(item_id, call, "completed", arguments))
            added = _function_call(item_id, call, "in_progress", "")
            out.append(self._event("response.output_item.added", output_index=index, item=added))
            if arguments:
                out.append(self._event("response.function_call_arguments.delta", item_id=item_id,
                                       output_index=index, delta=arguments))  # fmt: skip
            out.append(self._event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                                   arguments=arguments))  # fmt: skip
            out.append(self._event("response.output_item.done", output_index=index, item=self.tool_items[-1]))
        return out

    def _message(self, status: str, content: list[Any]) -> dict[str, Any]:
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def _text(self, content: str) -> list[bytes]:
        out = self._finish_reasoning()
        index = self.output_index
        if not self.text_started:
            self.text_started = True
            item = self._message("in_progress", [])
            out.append(self._event("response.output_item.added", output_index=index, item=item))
            out.append(self._event("response.content_part.added", item_id=self.item_id, output_index=index,
                                   content_index=0, part=_text_part("")))  # fmt: skip
        self.text.append(content)
        out.append(self._event("response.output_text.delta", item_id=self.item_id, output_index=index,
                               content_index=0, delta=content, logprobs=[]))  # fmt: skip
        return out

    def _completion(self, done: Done) -> list[bytes]:
        out = self._finish_reasoning()
        output: list[Any] = [self._reasoning_item()] if self.reasoning_id else []
        text, index = "".join(self.text), self.output_index
        if self.tool_items:
            output += self.tool_items
        elif self.text_started:
            output.append(self._message("completed", [_text_part(text)]))
            out.append(self._event("response.output_text.done", item_id=self.item_id, output_index=index,
                                   content_index=0, text=text, logprobs=[]))  # fmt: skip
            out.append(self._event("response.content_part.done", item_id=self.item_id, output_index=index,
                                   content_index=0, part=_text_part(text)))  # fmt: skip
            out.append(self._event("response.output_item.done", output_index=index, item=output[-1]))
        response = self._response("completed", output, _usage(done))
        response["completed_at"] = int(time.time())
        out.append(self._event("response.completed", response=response))
        return out

    def error_frame(self, error: ShimError) -> bytes:
        """OpenAI's `error` stream event (Ollama's own stream just stops: a client would wait for a
        response.completed that never comes)."""
        return self._event("error", code=None, message=error.message, param=None)

    def error_response(self, error: ShimError) -> Response:
        """OpenAI's error object; the stream's Cache-Control and Connection headers stay, as Ollama's middleware
        set them before the handler ran."""
        response = error_answer(error)
        response.headers.update({k: v for k, v in HEADERS.items() if k != "Content-Type"})
        return response
