"""The one internal request type both protocol adapters translate into, and the events they get back.

Nothing here knows MLX or HTTP: the Ollama and OpenAI adapters build a CompletionRequest, the engine
answers with Piece events and one Done (or a ShimError).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from registry.store import StoredModel
from shim.jsonbytes import go_float
from shim.options import GenerationOptions


@dataclass
class ToolCall:
    """A tool call: one the model made (the engine parses it; the service names it, `id` in Ollama's `call_`
    format, before any protocol writes it), or one an earlier assistant message carries back in a request
    (each protocol's binder or converter builds it). `index` is None only when a request sent none (Go reads
    it as 0); `arguments` is None only when a request sent none or null (Go's nil map)."""

    name: str
    arguments: dict[str, Any] | None
    index: int | None = 0
    id: str = ""

    def to_ollama(self) -> dict[str, Any]:
        """api.ToolCall as Ollama writes it (the id, when there is one, first), which is also what a Go
        template's message reads."""
        function = {"index": self.index or 0, "name": self.name, "arguments": self.arguments}
        return {"id": self.id, "function": function} if self.id else {"function": function}

    def to_hf(self) -> dict[str, Any]:
        """The call as a Jinja chat template sees it (transformers' shape), the function's keys in Ollama's
        order; `index` only when the request sent one (a template that prints the whole function shows it)."""
        function: dict[str, Any] = {} if self.index is None else {"index": self.index}
        function |= {"name": self.name, "arguments": self.arguments}
        call: dict[str, Any] = {"type": "function", "function": function}
        if self.id:
            call["id"] = self.id
        return call


@dataclass
class Message:
    """One chat message as every protocol's request binds it, converted by its methods to what a Go template
    and a Jinja template read."""

    role: str
    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_name: str = ""
    tool_call_id: str = ""
    images: list[bytes] = field(default_factory=list)  # for vision models: each becomes image tokens before content

    def to_template(self) -> dict[str, Any]:
        """The message a Go template sees: only the fields that are set, as Ollama's api.Message encodes."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.thinking:
            out["thinking"] = self.thinking
        if self.tool_calls:
            out["tool_calls"] = [call.to_ollama() for call in self.tool_calls]
        if self.tool_name:
            out["tool_name"] = self.tool_name
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out

    def to_hf(self, content: str, names: dict[str, str]) -> dict[str, Any]:
        """The message a Jinja chat template sees (transformers' shape), with `content` as the caller cut it.
        `names` maps tool call ids to function names: calls add to it, a result naming only an id reads it."""
        entry: dict[str, Any] = {"role": self.role, "content": content}
        if self.tool_calls:
            entry["tool_calls"] = [call.to_hf() for call in self.tool_calls]
            names.update((call.id, call.name) for call in self.tool_calls if call.id)
        name = self.tool_name or names.get(self.tool_call_id, "")
        if name:
            entry["name"] = name
        if self.tool_call_id:
            entry["tool_call_id"] = self.tool_call_id
        return entry


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

    def to_ollama(self) -> dict[str, Any]:
        """api.Logprob, which Ollama's OpenAI writer reuses: token, logprob, bytes (omitted when empty),
        top_logprobs (omitted when empty)."""
        out: dict[str, Any] = {"token": self.token, "logprob": go_float(self.logprob)}
        if self.bytes:
            out["bytes"] = list(self.bytes)
        if self.top:
            out["top_logprobs"] = [t.to_ollama() for t in self.top]
        return out


@dataclass
class Piece:
    """A streamed fragment of the answer: text, thinking, or parsed tool calls, with the log-probabilities of
    the tokens it releases (when the request asked for them)."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
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
