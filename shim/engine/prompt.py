"""From a CompletionRequest to prompt token ids, the way Ollama builds and truncates prompts.

MLX models carry a Hugging Face chat template (Jinja), used unless a Go template overrides it (Modelfile
TEMPLATE or the request's `template`), in which case we render Ollama's Go template exactly as Ollama
would. Chat history that does not fit `num_ctx` loses its oldest non-system messages first (Ollama's
chatPrompt); a prompt still too long keeps its first `num_keep` tokens and its tail (Ollama's runner).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from registry.infill import InfillFormat, infill_format
from shim.engine.mlx_lm_api import hf_tokenizer
from shim.engine.parsers import HARMONY, tokenizer_family
from shim.engine.template_messages import fold_system, link_tool_calls
from shim.engine.types import CompletionRequest, Message
from shim.errors import Kind, ShimError
from shim.gotemplate import Template, TemplateError, Values, chat_values, generate_values

DEFAULT_TEMPLATE = "{{ .Prompt }}"  # Ollama's template for models that come without one


def build_prompt(req: CompletionRequest, tokenizer: Any, num_ctx: int) -> list[int]:
    if req.raw_prompt is not None:
        return _truncate(_encode(tokenizer, req.raw_prompt, special=True), num_ctx, req)
    if req.infill is not None:
        return _truncate(_infill_tokens(req, tokenizer), num_ctx, req)
    return _truncate(_chat_prompt(req, tokenizer, num_ctx)[1], num_ctx, req)


def render_prompt(req: CompletionRequest, tokenizer: Any, num_ctx: int) -> str:
    """The prompt as text, as Ollama's `_debug_render_only` shows it: the template's output after the chat
    history is fitted to num_ctx (a raw prompt as sent; an infill framed by FIM tokens, decoded)."""
    if req.raw_prompt is not None:
        return req.raw_prompt
    if req.infill is not None:
        return str(tokenizer.decode(_infill_tokens(req, tokenizer)))
    return _chat_prompt(req, tokenizer, num_ctx)[0]


def _chat_prompt(req: CompletionRequest, tokenizer: Any, num_ctx: int) -> tuple[str, list[int]]:
    """The rendered messages and their tokens; history that does not fit loses its oldest messages."""
    if req.think == "max" and tokenizer_family(tokenizer) is HARMONY:
        req = replace(req, think="high")  # as Ollama: harmony's `Reasoning:` knows low, medium and high only
    assert req.messages is not None
    lead = tokenizer.decode(_context(req, tokenizer))
    template = _parse(req.template) if req.template else None
    if template is None and not getattr(tokenizer, "chat_template", None):
        template = _parse(DEFAULT_TEMPLATE)  # a base model without a chat template, as Ollama treats one

    def render(messages: list[Message]) -> tuple[str, list[int]]:
        if template is not None:
            text = lead + _render_go(template, messages, req)
            return text, _encode(tokenizer, text, special=True)
        text = lead + _render_hf(tokenizer, messages, req)
        return text, _encode(tokenizer, text, special=False)

    messages = req.messages
    rendered = render(messages)
    if req.truncate and len(rendered[1]) > num_ctx and len(messages) > 1:
        rendered = render(_fit_messages(messages, lambda m: len(render(m)[1]) <= num_ctx))
    return rendered


def _infill_tokens(req: CompletionRequest, tokenizer: Any) -> list[int]:
    """A Go template with `.Suffix` renders the infill as Ollama does; otherwise the tokenizer's own FIM
    tokens frame it (`registry.infill`), with the BOS the tokenizer adds to any text. A deprecated
    `context` goes first, as Ollama prepends it to any prompt."""
    assert req.infill is not None
    prefix, suffix = req.infill.prefix, req.infill.suffix
    if req.template:
        values = generate_values(prefix, suffix=suffix, think=req.think)
        lead = tokenizer.decode(_context(req, tokenizer))
        return _encode(tokenizer, lead + _execute(_parse(req.template), values), special=True)
    fmt = tokenizer_infill_format(tokenizer)
    if fmt is None:
        raise ShimError(f"{req.model.name.full} does not support insert", Kind.BAD_INPUT)
    before = [tokenizer.convert_tokens_to_ids(fmt.prefix), *_encode_code(tokenizer, prefix)]
    after = [tokenizer.convert_tokens_to_ids(fmt.suffix), *_encode_code(tokenizer, suffix)]
    middle = [tokenizer.convert_tokens_to_ids(fmt.middle)] if fmt.middle else []
    parts = after + before if fmt.suffix_first else before + after
    return _context(req, tokenizer) + _encode(tokenizer, "", special=True) + parts + middle


def _context(req: CompletionRequest, tokenizer: Any) -> list[int]:
    """The deprecated `context` tokens, which a client may have kept from another model: ids outside this
    vocabulary are the client's error, not a decoder crash."""
    tokens = list(req.context or [])
    size = len(hf_tokenizer(tokenizer))
    bad = next((t for t in tokens if not 0 <= t < size), None)
    if bad is not None:
        raise ShimError(f"invalid context: token {bad} is not in the model's vocabulary", Kind.BAD_INPUT)
    return tokens


def _encode_code(tokenizer: Any, text: str) -> list[int]:
    """Code as plain text: a special token spelled in it (`<|fim_middle|>` in a comment) stays text."""
    try:
        return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True))
    except TypeError:  # a tokenizer without the option
        return _encode(tokenizer, text, special=False)


def tokenizer_infill_format(tokenizer: Any) -> InfillFormat | None:
    """The FIM format of a loaded tokenizer: each of its tokens must be one vocabulary entry."""

    def has(token: str) -> bool:
        token_id = tokenizer.convert_tokens_to_ids(token)
        return isinstance(token_id, int) and tokenizer.convert_ids_to_tokens(token_id) == token

    return infill_format(has)


def stop_token_ids(req: CompletionRequest, tokenizer: Any) -> frozenset[int]:
    """Tokens that end generation besides EOS: a FIM middle also ends on its family's end tokens."""
    if req.infill is None or req.template:
        return frozenset()
    fmt = tokenizer_infill_format(tokenizer)
    ends = [tokenizer.convert_tokens_to_ids(t) for t in fmt.ends] if fmt else []
    return frozenset(i for i in ends if isinstance(i, int) and i != getattr(tokenizer, "unk_token_id", None))


def _fit_messages(messages: list[Message], fits: Any) -> list[Message]:
    """Ollama's chatPrompt: always keep the last message; keep the longest run of latest messages that still
    fits, with the system messages that precede the cut. Ollama walks back one message at a time; the prompt
    only grows with each message taken, so halving finds the same cut in log2(n) renders instead of n (each
    renders and tokenizes the whole prompt on the engine's worker: a 1200-message chat took 1 s, every stream
    of the server frozen meanwhile)."""

    def candidate(cut: int) -> list[Message]:
        return [m for m in messages[:cut] if m.role == "system"] + messages[cut:]

    low, high = 0, len(messages) - 1  # the cut lies in [low, high]; high (the last message alone) always goes
    while low < high:
        middle = (low + high) // 2
        if fits(candidate(middle)):
            high = middle
        else:
            low = middle + 1
    return candidate(low)


def _truncate(tokens: list[int], num_ctx: int, req: CompletionRequest) -> list[int]:
    if len(tokens) <= num_ctx:
        return tokens
    if not req.truncate:
        raise ShimError("the input length exceeds the context length", Kind.BAD_INPUT)
    keep = min(max(req.options.num_keep, 0), num_ctx // 2)
    return tokens[:keep] + tokens[len(tokens) - (num_ctx - keep) :]


def _encode(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=special))


def _parse(text: str) -> Template:
    """A template that does not parse or execute is a 500 in Ollama (c.JSON(500) in Generate/ChatHandler)."""
    try:
        return Template.parse(text)
    except TemplateError as e:
        raise ShimError(str(e)) from e


def _render_go(template: Template, messages: list[Message], req: CompletionRequest) -> str:
    return _execute(template, chat_values([m.to_template() for m in messages], tools=req.tools, think=req.think))


def _execute(template: Template, values: Values) -> str:
    try:
        return template.execute(values)
    except TemplateError as e:
        raise ShimError(str(e)) from e


def _render_hf(tokenizer: Any, messages: list[Message], req: CompletionRequest) -> str:
    """Render with the model's own Jinja chat template; earlier thinking is never fed back. `think` unset
    (a model without the thinking capability) selects the template's no-think branch: a template that
    thinks by default (Gemma 4's) would otherwise write reasoning no parser reads as thinking."""
    hf_messages = []
    names: dict[str, str] = {}  # tool call id -> function name, for results that name only the id
    think_start, think_end = getattr(tokenizer, "think_start", None), getattr(tokenizer, "think_end", None)
    for m in messages:
        content = m.content
        if m.role == "assistant" and think_start and think_end:
            content = _strip_thinking(content, think_start, think_end)
        hf_messages.append(m.to_hf(content, names))
    hf_messages = link_tool_calls(hf_messages, str(getattr(tokenizer, "chat_template", None) or ""))
    kwargs: dict[str, Any] = {"enable_thinking": bool(req.think)}
    if isinstance(req.think, str):
        kwargs["reasoning_effort"] = req.think

    def apply(chat: list[dict[str, Any]]) -> str:
        return str(
            tokenizer.apply_chat_template(
                chat, tools=req.tools or None, add_generation_prompt=True, tokenize=False, **kwargs
            )
        )

    try:
        return apply(hf_messages)
    except Exception as e:  # Jinja raises its own error types for templates that reject the input
        folded = fold_system(hf_messages)  # a template without a system role (Gemma 2) takes it folded
        if folded is not None:
            try:
                return apply(folded)
            except Exception:
                pass
        raise ShimError(f"chat template error: {e}") from e


def _strip_thinking(content: str, start: str, end: str) -> str:
    """An earlier answer sent back with its think block (as some clients do) loses the block."""
    if content.lstrip().startswith(start) and end in content:
        return content.partition(end)[2].lstrip()
    return content
