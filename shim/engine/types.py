"""The one internal request type both protocol adapters translate into, and the events they get back.

Nothing here knows MLX or HTTP: the Ollama and OpenAI adapters build a CompletionRequest, the engine
answers with Piece events and one Done (or a ShimError).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from registry.store import StoredModel
from shim.options import GenerationOptions


@dataclass
class Message:
    role: str
    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_name: str = ""
    tool_call_id: str = ""


@dataclass
class Infill:
    """Fill-in-the-middle: the code before the cursor (the request's `prompt`) and after it (`suffix`)."""

    prefix: str
    suffix: str


@dataclass
class CompletionRequest:
    model: StoredModel
    options: GenerationOptions
    # Exactly one of these is the prompt source: chat-like messages, raw text sent verbatim, or an infill.
    messages: list[Message] | None = None
    raw_prompt: str | None = None
    infill: Infill | None = None
    template: str = ""  # a Go template overriding the model's (request `template` or Modelfile TEMPLATE)
    context: list[int] | None = None  # deprecated /api/generate context: detokenized and prepended
    tools: list[dict[str, Any]] | None = None
    think: bool | str | None = None
    format: str | dict[str, Any] | None = None  # "json" or a JSON schema the output must follow
    keep_alive: float | None = None
    truncate: bool = True
    shift: bool = True
    logprobs: int | None = None  # None: not asked for; else how many alternatives per token (top_logprobs)


@dataclass
class TokenLogprob:
    """One token's log-probability under the model's distribution at its position; `top` holds the most
    likely alternatives there (most likely first), when the request asked for them."""

    token: str
    logprob: float
    bytes: bytes
    top: list[TokenLogprob] = field(default_factory=list)


@dataclass
class Piece:
    """A streamed fragment of the answer: text, thinking, or parsed tool calls, with the log-probabilities of
    the tokens it releases (when the request asked for them)."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class Done:
    done_reason: Literal["stop", "length", "load", "unload"]  # "load"/"unload": answered without generating
    prompt_eval_count: int
    prompt_eval_duration: int  # ns
    eval_count: int
    eval_duration: int  # ns
    load_duration: int  # ns, from queueing to model ready
    context: list[int]  # prompt tokens + generated tokens, for /api/generate's `context`


@dataclass
class EmbedRequest:
    """Texts to embed with one model (any model: an encoder, or a decoder's mean hidden state)."""

    model: StoredModel
    options: GenerationOptions
    inputs: list[str]
    truncate: bool = True
    keep_alive: float | None = None


@dataclass
class EmbedResult:
    embeddings: list[Any]  # one float32 numpy vector per input, as the model outputs it (normalised or not)
    prompt_eval_count: int
    load_duration: int  # ns, from queueing to model ready
