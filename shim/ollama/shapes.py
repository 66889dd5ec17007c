"""Ollama's response objects, field for field in Go's struct order, with Go's omitempty rules."""

from __future__ import annotations

import math
import time
from typing import Any

from registry.model_dir import ModelDirInfo
from registry.store import StoredModel
from shim.engine import Done, Piece
from shim.engine.types import TokenLogprob, ToolCall
from shim.timefmt import local_from_ns, now_utc


def metrics(done: Done, started_ns: int, *, with_context: bool) -> dict[str, Any]:
    """The final chunk's fields; Ollama omits each metric when it is zero."""
    out: dict[str, Any] = {"done_reason": done.done_reason}
    if with_context:
        out["context"] = done.context
    values = {
        "total_duration": time.perf_counter_ns() - started_ns,
        "load_duration": done.load_duration,
        "prompt_eval_count": done.prompt_eval_count,
        "prompt_eval_duration": done.prompt_eval_duration,
        "eval_count": done.eval_count,
        "eval_duration": done.eval_duration,
    }
    out.update({k: v for k, v in values.items() if v})
    return out


def logprobs(entries: list[TokenLogprob]) -> list[dict[str, Any]]:
    return [e.to_ollama() for e in entries]


def debug_info(rendered: str) -> dict[str, Any]:
    """api.DebugInfo; image_count is omitted when zero (no model here takes images)."""
    return {"rendered_template": rendered}


def generate_chunk(model: str, piece: Piece) -> dict[str, Any]:
    chunk: dict[str, Any] = {"model": model, "created_at": now_utc(), "response": piece.content}
    if piece.thinking:
        chunk["thinking"] = piece.thinking
    chunk["done"] = False
    if piece.logprobs:
        chunk["logprobs"] = logprobs(piece.logprobs)
    return chunk


def chat_message(content: str, thinking: str = "", tool_calls: list[ToolCall] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = [call.to_ollama() for call in tool_calls]
    return message


def chat_chunk(model: str, piece: Piece) -> dict[str, Any]:
    chunk = {
        "model": model,
        "created_at": now_utc(),
        "message": chat_message(piece.content, piece.thinking, piece.tool_calls),
        "done": False,
    }
    if piece.logprobs:
        chunk["logprobs"] = logprobs(piece.logprobs)
    return chunk


def generate_final(model: str, extra: dict[str, Any], collected: Piece | None = None) -> dict[str, Any]:
    """GenerateResponse's order: ..., done, done_reason, context, metrics, logprobs."""
    piece = collected or Piece()
    out: dict[str, Any] = {"model": model, "created_at": now_utc(), "response": piece.content}
    if piece.thinking:
        out["thinking"] = piece.thinking
    out["done"] = True
    out.update(extra)
    if piece.logprobs:
        out["logprobs"] = logprobs(piece.logprobs)
    return out


def chat_final(model: str, extra: dict[str, Any], collected: Piece | None = None) -> dict[str, Any]:
    """ChatResponse's order: ..., done, done_reason, logprobs, then the metrics."""
    piece = collected or Piece()
    message = chat_message(piece.content, piece.thinking, piece.tool_calls)
    out: dict[str, Any] = {"model": model, "created_at": now_utc(), "message": message, "done": True}
    if "done_reason" in extra:
        out["done_reason"] = extra["done_reason"]
    if piece.logprobs:
        out["logprobs"] = logprobs(piece.logprobs)
    out.update(extra)  # done_reason keeps its place
    return out


def generate_debug(model: str, rendered: str) -> dict[str, Any]:
    """GenerateHandler's `_debug_render_only` answer: a zero GenerateResponse with the rendered prompt."""
    return {"model": model, "created_at": now_utc(), "response": "", "done": False, "_debug_info": debug_info(rendered)}


def chat_debug(model: str, rendered: str) -> dict[str, Any]:
    """ChatHandler's: a zero ChatResponse, so its message is Go's zero Message (empty role and content)."""
    return {
        "model": model,
        "created_at": now_utc(),
        "message": {"role": "", "content": ""},
        "done": False,
        "_debug_info": debug_info(rendered),
    }


def details(info: ModelDirInfo) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "safetensors",
        "family": info.family,
        "families": [info.family],
        "parameter_size": info.parameter_size,
        "quantization_level": info.quantization_level,
    }


def tags_entry(stored: StoredModel) -> dict[str, Any]:
    info = stored.info()
    return {
        "name": stored.name.display,
        "model": stored.name.display,
        "modified_at": local_from_ns(stored.modified_ns),
        "size": info.size,
        "digest": stored.digest,
        "details": details(info),
        "capabilities": list(stored.capabilities(info)),
    }


FOREVER_NS = 2**63 - 1  # Go's math.MaxInt64 duration: a "forever" keep_alive expires around the year 2318


def expires_at(seconds: float) -> str:
    now = time.time_ns()
    if math.isinf(seconds):
        return local_from_ns(now + FOREVER_NS)
    return local_from_ns(int(seconds * 1e9))
