"""The protocol-neutral request path: find the model, check it can do what is asked, resolve its options,
then either answer at once (a load or unload) or hand back the completion the engine is to run.

Every adapter goes through here, as Ollama's OpenAI and Anthropic middlewares go through its native
handlers: the Ollama endpoints with their own request, the /v1 endpoints after converting theirs. The
checks run in the order of Ollama's GenerateHandler/ChatHandler, with their texts; what they refuse is a
`ShimError` whose kind each protocol renders. Nothing here knows HTTP; model-directory facts are read on
a worker thread (`info`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import string
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from registry.model_dir import CorruptModel, ModelDirInfo
from registry.names import InvalidName, ModelName
from registry.store import Store, StoredModel
from shim.config import Settings
from shim.engine import CompletionRequest, Done, EmbedRequest, EmbedResult, Infill, Message, Piece
from shim.engine.vision import NO_VISION
from shim.errors import Kind, ShimError
from shim.jsonbytes import go_json, go_quote
from shim.options import GenerationOptions, OptionError, resolve_options
from shim.service.backend import ModelBackend
from shim.service.requests import ChatRequest, GenerateRequest

RAW_IMAGES = "images are not supported with raw or suffix prompts"  # ours: images need a message to go in

Event = Piece | Done
OnDone = Callable[[str, Done], None]  # (the model's name, its answer's Done)
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Answered:
    """A request answered without generating (a load or an unload): its one final event."""

    done: Done

    @classmethod
    def because(cls, reason: Literal["load", "unload"]) -> Answered:
        return cls(Done(reason, 0, 0, 0, 0, 0, []))


Prepared = CompletionRequest  # what the engine is to run


class ModelService:
    """The checks and steps every protocol shares, over one store and one model backend."""

    def __init__(self, store: Store, backend: ModelBackend, settings: Settings, on_done: OnDone | None = None) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.on_done = on_done  # sees each generated answer's Done once, with its model (/metrics)

    # -- finding a model ---------------------------------------------------------------------------------

    async def lookup(self, name: ModelName) -> StoredModel | None:
        """The stored model; a name still arriving (the embedded model's first-start import) is waited for,
        as a load is, rather than answered 404."""
        stored = self.store.get(name)
        if stored is None and (arrival := self.store.arriving(name)) is not None:
            with contextlib.suppress(Exception):  # its job logged why; the request then finds no model
                await asyncio.wrap_future(arrival)
            stored = self.store.get(name)
        return stored

    async def find(self, requested: str, *, empty: ShimError) -> StoredModel:
        if not requested.strip():
            raise empty
        try:
            name = ModelName.parse(requested)
        except InvalidName:
            raise ShimError("invalid model name", Kind.BAD_INPUT) from None
        stored = await self.lookup(name)
        if stored is None:
            raise ShimError(f"model '{requested}' not found", Kind.NOT_FOUND)
        return stored

    @staticmethod
    async def info(stored: StoredModel) -> ModelDirInfo:
        """The model directory's facts, read on a worker thread (globs, headers, tokenizer files); raises
        OSError or ValueError when the directory is gone or broken."""
        return await asyncio.to_thread(stored.info)

    async def present_info(self, stored: StoredModel, requested: str) -> ModelDirInfo:
        """A manifest whose model directory is gone is a missing model, as a missing blob is in Ollama."""
        try:
            return await self.info(stored)
        except CorruptModel as e:  # Ollama's show answers a model it cannot read with 500 and the cause
            raise ShimError(str(e), Kind.INTERNAL) from None
        except (OSError, ValueError):
            raise ShimError(f"model '{requested}' not found", Kind.NOT_FOUND) from None

    async def options(self, stored: StoredModel, options: dict[str, Any] | None) -> GenerationOptions:
        """The model's parameters under the request's options (`resolved`), its info read here."""
        return self.resolved(stored, options, await self.info(stored))

    def resolved(self, stored: StoredModel, options: dict[str, Any] | None, info: ModelDirInfo) -> GenerationOptions:
        """The model's parameters under the request's options, num_ctx capped at the model's trained context;
        Ollama answers a bad option with a 500."""
        try:
            return resolve_options(self.settings.context_length, stored.parameters, options, info.context_length)
        except OptionError as e:
            raise ShimError(str(e)) from None

    # -- load, unload, run ----------------------------------------------------------------------------------

    async def load(self, stored: StoredModel, keep_alive: float | None) -> None:
        await self.backend.load(stored, keep_alive)

    async def unload(self, stored: StoredModel) -> None:
        await self.backend.unload(stored)

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        return await self.backend.embed(req)

    async def render(self, completion: Prepared) -> str:
        """The prompt `_debug_render_only` shows, rendered where the model is loaded (as Ollama's handlers
        render after scheduling the runner); template errors are internal errors there too."""
        return await self.backend.render(completion)

    def events(self, prepared: Prepared | Answered) -> AsyncGenerator[list[Event], None]:
        """The answer's events in batches, the final Done last: the engine's, or the one an answer has."""
        if isinstance(prepared, Answered):
            return _one(prepared.done)
        on_done = self.on_done
        report = None if on_done is None else functools.partial(on_done, prepared.model.name.display)
        return _until_done(self.backend.complete(prepared), report)

    # -- chat and generate ----------------------------------------------------------------------------------

    async def prepare_generate(self, req: GenerateRequest) -> Prepared | Answered:
        """GenerateHandler's checks in its order; a load or unload request is answered here."""
        _check_top_logprobs(req)
        requested = req.model
        stored = await self.find(requested, empty=ShimError(f"model '{requested}' not found", Kind.NOT_FOUND))
        prompt = req.prompt
        if prompt == "" and req.keep_alive == 0:
            await self.unload(stored)
            return Answered.because("unload")
        raw = req.raw
        if raw and (req.template or req.system or req.context):
            raise ShimError("raw mode does not support template, system, or context", Kind.BAD_INPUT)
        info = await self.present_info(stored, requested)  # one trip to a worker thread for both uses
        capabilities = stored.capabilities(info)
        think = _think(req, capabilities)
        if "completion" not in capabilities:  # an embedding model
            raise ShimError(f"{go_quote(requested)} does not support generate", Kind.BAD_INPUT)
        suffix = req.suffix
        if suffix and "insert" not in capabilities:
            raise ShimError(f"{stored.name.full} does not support insert", Kind.BAD_INPUT)
        if req.images and "vision" not in capabilities:
            raise ShimError(NO_VISION, Kind.BAD_INPUT)
        if req.images and (raw or suffix):  # images go with a message; a raw prompt or an infill has none
            raise ShimError(RAW_IMAGES, Kind.BAD_INPUT)
        options = self.resolved(stored, req.options, info)
        if prompt == "":
            await self.load(stored, req.keep_alive)
            return Answered.because("load")

        template = req.template or stored.template
        if raw:
            return _completion(stored, options, req, think, raw_prompt=prompt)
        if suffix:  # fill-in-the-middle: no system prompt, as in Ollama
            infill = Infill(prompt, suffix)
            return _completion(stored, options, req, think, infill=infill, template=template, context=req.context)
        system = req.system or stored.system
        history = [] if req.has_context else _stored_messages(stored)
        asked = Message("user", prompt, images=list(req.images or ()))
        messages = ([Message("system", system)] if system else []) + history + [asked]
        return _completion(stored, options, req, think, messages=messages, template=template, context=req.context)

    async def prepare_chat(self, req: ChatRequest, relax_thinking: bool = False) -> Prepared | Answered:
        """ChatHandler's checks in its order; a load or unload request (no messages) is answered here."""
        _check_top_logprobs(req)
        requested = req.model
        stored = await self.find(requested, empty=ShimError("model is required", Kind.BAD_INPUT))
        raw_messages = req.messages
        if not raw_messages and req.keep_alive == 0:
            await self.unload(stored)
            return Answered.because("unload")
        info = await self.present_info(stored, requested)  # one trip to a worker thread for both uses
        capabilities = stored.capabilities(info)
        think = _think(req, capabilities, relax_thinking)  # before the capability list, as ChatHandler does
        if "completion" not in capabilities:  # an embedding model
            raise ShimError(f"{go_quote(requested)} does not support chat", Kind.BAD_INPUT)
        tools = req.tools or None
        if tools and "tools" not in capabilities:
            raise ShimError(f"{stored.name.full} does not support tools", Kind.BAD_INPUT)
        if any(m.images for m in raw_messages) and "vision" not in capabilities:
            raise ShimError(NO_VISION, Kind.BAD_INPUT)
        options = self.resolved(stored, req.options, info)
        if not raw_messages:
            await self.load(stored, req.keep_alive)
            return Answered.because("load")

        messages = _stored_messages(stored) + raw_messages
        if raw_messages[0].role != "system" and stored.system:
            messages.insert(0, Message("system", stored.system))
        return _completion(stored, options, req, think, messages=messages, template=stored.template, tools=tools)


async def _one(done: Done) -> AsyncGenerator[list[Event], None]:
    yield [done]


def tool_call_id() -> str:
    """Ollama's format: `call_` and 8 characters of [a-z0-9]."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


async def _until_done(
    batches: AsyncGenerator[list[Event], None], report: Callable[[Done], None] | None
) -> AsyncGenerator[list[Event], None]:
    """The engine's batches up to the one that ends with Done (reported before it is written), each tool call
    named as Ollama's handler names it; closing this closes (cancels) the job."""
    try:
        async for batch in batches:
            for event in batch:
                for call in event.tool_calls if isinstance(event, Piece) else ():
                    call.id = call.id or tool_call_id()
            last = batch[-1]
            if isinstance(last, Done) and report is not None:
                report(last)
            yield batch
            if isinstance(last, Done):
                return
    finally:
        await batches.aclose()


def _check_top_logprobs(req: ChatRequest | GenerateRequest) -> None:
    if not 0 <= req.top_logprobs <= 20:
        raise ShimError("top_logprobs must be between 0 and 20", Kind.BAD_INPUT)


def _think(req: ChatRequest | GenerateRequest, capabilities: tuple[str, ...], relax: bool = False) -> bool | str | None:
    """`think` decided once. `relax` (Ollama's relax_thinking, set by /v1/messages): thinking asked of a model
    that cannot think is dropped rather than refused, so Claude Code works with any model."""
    think = req.think
    if "thinking" in capabilities:
        return True if think is None else think
    if think and relax:
        return None
    if think:
        raise ShimError(f'"{req.model}" does not support thinking', Kind.BAD_INPUT)
    return think


def _format(req: ChatRequest | GenerateRequest) -> str | dict[str, Any] | None:
    """`format` as Ollama's runner checks it: null and "" mean none, "json" any JSON object, an object
    a JSON schema; anything else is a 500 with the raw value quoted (Go's %q of the JSON bytes)."""
    fmt = req.format
    if fmt is None or fmt == "":
        return None
    if fmt == "json" or isinstance(fmt, dict):
        return fmt
    # Go quotes the bytes as sent: orjson writes no integer past 64 bits and no 1e400
    raw = getattr(fmt, "literal", None) or (str(fmt) if type(fmt) is int else go_json(fmt).decode())
    raise ShimError(f'invalid format: {go_quote(raw)}; expected "json" or a valid JSON Schema object')


def _completion(
    stored: StoredModel,
    options: GenerationOptions,
    req: ChatRequest | GenerateRequest,
    think: bool | str | None,
    **prompt: Any,
) -> CompletionRequest:
    """The fields generate and chat share; `prompt` says where the prompt comes from."""
    return CompletionRequest(
        model=stored,
        options=options,
        think=think,
        format=_format(req),
        keep_alive=req.keep_alive,
        truncate=req.truncate,
        shift=req.shift,
        logprobs=req.top_logprobs if req.logprobs else None,
        **prompt,
    )


def _stored_messages(stored: StoredModel) -> list[Message]:
    """A model's MESSAGE history goes before the request's own messages, as in Ollama."""
    return [Message(m.get("role", ""), m.get("content", "")) for m in stored.messages]
