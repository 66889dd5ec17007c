"""Typed requests: what each protocol's binder (Ollama's own bodies, `shim.ollama.binding`) or converter (the
OpenAI and Anthropic middlewares') hands the service. Every attribute is the JSON key of Ollama's struct, so
a binder constructs them from the fields a body sent; the defaults are Go's zero values (or Ollama's default
where its field is a pointer), and the service's checks read names rather than dictionary keys."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    debug_render_only: bool = False  # `_debug_render_only`


@dataclass
class ChatRequest(_Completion):
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


@dataclass
class GenerateRequest(_Completion):
    prompt: str = ""
    suffix: str = ""
    system: str = ""
    template: str = ""
    context: list[int] | None = None
    raw: bool = False
    images: list[bytes] | None = None

    @property
    def has_context(self) -> bool:
        """`context` sent at all (even empty): the model's MESSAGE history is left out."""
        return self.context is not None


@dataclass
class TextEmbedRequest:
    """Ollama's api.EmbedRequest (/api/embed, and /v1/embeddings converted); `input` stays the JSON value sent,
    which the service checks in EmbedHandler's order. (The engine's EmbedRequest is the job made from it.)"""

    model: str = ""
    input: Any = None
    truncate: bool = True
    dimensions: int = 0
    keep_alive: float | None = None
    options: dict[str, Any] | None = None


@dataclass
class EmbeddingRequest:
    """Ollama's api.EmbeddingRequest, the legacy /api/embeddings: one prompt."""

    model: str = ""
    prompt: str = ""
    keep_alive: float | None = None
    options: dict[str, Any] | None = None


@dataclass
class _Named:
    """A request naming a model by `model` or by `name`, its older spelling: `model` is the one asked for."""

    model: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.model = self.model or self.name


@dataclass
class ShowRequest(_Named):
    """Ollama's ShowRequest (`template` is bound but, as in Ollama, not read)."""

    system: str = ""
    template: str = ""
    verbose: bool = False
    options: dict[str, Any] | None = None


@dataclass
class DeleteRequest(_Named):
    """Ollama's DeleteRequest: the name to remove."""


@dataclass
class TransferRequest(_Named):
    """Ollama's PullRequest and PushRequest (mlx-shim reads `model` and `stream`)."""

    insecure: bool = False
    stream: bool = True
    username: str = ""
    password: str = ""


@dataclass
class CopyRequest:
    source: str = ""
    destination: str = ""


@dataclass
class ImportRequest:
    """mlx-shim's own POST /api/import: the Ollama library names to import (none: all of them)."""

    models: list[str] = field(default_factory=list)
    stream: bool = True
