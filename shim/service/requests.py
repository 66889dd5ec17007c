"""Typed chat, generate, show, copy, delete, pull and push requests, made from what a protocol's binder produced
(Ollama's own body, or the native request the OpenAI and Anthropic converters build). Every field keeps the value
the body gave it, or Go's default when absent, so the service's checks read names rather than dictionary keys."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from shim.engine import Message


@dataclass
class _Completion:
    """The fields chat and generate share (Ollama's GenerateRequest/ChatRequest)."""

    model: str = ""
    stream: bool = True
    format: Any = None
    keep_alive: float | None = None
    options: dict[str, Any] | None = None
    think: bool | str | None = None
    truncate: bool = True
    shift: bool = True
    logprobs: bool = False
    top_logprobs: int = 0
    debug_render_only: bool = False

    @classmethod
    def _values(cls, bound: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for f in fields(cls):
            key = "_debug_render_only" if f.name == "debug_render_only" else f.name
            if key in bound and f.init:
                out[f.name] = bound[key]
        return out


@dataclass
class ChatRequest(_Completion):
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, bound: dict[str, Any]) -> ChatRequest:
        values = cls._values(bound)
        values["messages"] = [_message(m) for m in bound.get("messages") or []]
        return cls(**values)


@dataclass
class GenerateRequest(_Completion):
    prompt: str = ""
    suffix: str = ""
    system: str = ""
    template: str = ""
    context: list[int] | None = None
    raw: bool = False
    images: list[bytes] | None = None
    has_context: bool = field(default=False, init=False)  # `context` sent at all (even empty): no history

    @classmethod
    def of(cls, bound: dict[str, Any]) -> GenerateRequest:
        request = cls(**cls._values(bound))
        request.has_context = "context" in bound
        return request


def _message(m: dict[str, Any]) -> Message:
    return Message(
        role=m.get("role", ""),
        content=m.get("content", ""),
        thinking=m.get("thinking", ""),
        tool_calls=m.get("tool_calls", []),
        tool_name=m.get("tool_name", ""),
        tool_call_id=m.get("tool_call_id", ""),
        images=m.get("images") or [],
    )


@dataclass(frozen=True)
class ShowRequest:
    """Ollama's ShowRequest: `model` is the name asked for (`name` is its older spelling)."""

    model: str = ""
    system: str = ""
    options: dict[str, Any] | None = None
    verbose: bool = False

    @classmethod
    def of(cls, bound: dict[str, Any]) -> ShowRequest:
        model = bound.get("model") or bound.get("name") or ""
        return cls(model, bound.get("system", ""), bound.get("options"), bound.get("verbose", False))


@dataclass(frozen=True)
class CopyRequest:
    source: str = ""
    destination: str = ""

    @classmethod
    def of(cls, bound: dict[str, Any]) -> CopyRequest:
        return cls(bound.get("source", ""), bound.get("destination", ""))


@dataclass(frozen=True)
class DeleteRequest:
    """Ollama's DeleteRequest: `model` is the name to remove (`name` is its older spelling)."""

    model: str = ""

    @classmethod
    def of(cls, bound: dict[str, Any]) -> DeleteRequest:
        return cls(bound.get("model") or bound.get("name") or "")


@dataclass(frozen=True)
class TransferRequest:
    """The fields mlx-shim reads of Ollama's PullRequest and PushRequest (`name` is `model`'s older spelling)."""

    model: str = ""
    stream: bool = True

    @classmethod
    def of(cls, bound: dict[str, Any]) -> TransferRequest:
        return cls(bound.get("model") or bound.get("name") or "", bound.get("stream", True))
