"""The output format of a model's answers, chosen per family the way mlx-lm chooses its tool parser: by
markers in the chat template (then in the vocabulary), falling back to mlx-lm's own parser.

    family      seen by                                   format
    harmony     `<|channel|>` and `<|message|>`           harmony.Harmony: channels, thinking, calls
    gemma4      `<|channel>` and `<channel|>`             gemma4.Gemma4: thinking channel, mlx-lm's Gemma 4
                                                            calls; ends at `<|tool_response>` too
    llama3      `<|python_tag|>`, or Llama 3 headers       jsoncalls.JsonCalls: tag-less JSON calls at the
                with `"parameters"`                         answer's start, `<|python_tag|>` JSON or
                                                            `name.call(...)`; ends at `<|eom_id|>` too
    deepseek    `<｜tool▁calls▁begin｜>`                    deepseek.parse_tool_calls between the markers
    granite     `<|tool_call|>` with `<|start_of_role|>`   JsonCalls: `<|tool_call|>[{...}, ...]`
    phi4-mini   `<|tool|>` and `<|/tool|>`                 JsonCalls: `functools[{...}, ...]`
    (others)    mlx-lm's `_infer_tool_parser`             collector.ToolCallCollector with mlx-lm's parser:
                                                            Qwen `<tool_call>` JSON, Qwen3.5/Coder XML, Mistral
                                                            `[TOOL_CALLS]` (v0.3 list and `name[ARGS]{...}`),
                                                            FunctionGemma, GLM, Kimi, ...

A prompt rendered with an Ollama Go template (Modelfile TEMPLATE) is answered in the template's markup: with
no family of ours (our built-in parsers, as Ollama's PARSER wins over its template tag), the format is the
one `template_calls` derives from the template, as Ollama does, rather than mlx-lm's guess from the
tokenizer's own chat template, which did not render the prompt.

Thinking in `<think>` blocks (Qwen3, DeepSeek-R1, opened by the template or not) is split before any of
these see the text (`shim/engine/thinking.py`); harmony and Gemma 4 carry their thinking in a channel
instead (`Family.thinking`: the format splits it, and sees whether the request thinks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shim.engine.parsers import deepseek
from shim.engine.parsers.base import CallFormat
from shim.engine.parsers.collector import ToolCallCollector
from shim.engine.parsers.gemma4 import CHANNEL, CHANNEL_END, TOOL_RESPONSE, TURN_END, Gemma4
from shim.engine.parsers.harmony import CALL, RETURN, Harmony
from shim.engine.parsers.jsoncalls import JsonCalls
from shim.engine.parsers.template_calls import template_format

Tools = list[dict[str, Any]] | None


@dataclass(frozen=True)
class Family:
    name: str
    matches: Callable[[str, Callable[[str], bool]], bool]  # (chat template, has_token) -> is this family
    make: Callable[[Tools, bool], CallFormat]  # (the request's tools, whether it thinks) -> its format
    ends: tuple[str, ...] = ()  # tokens that end a turn besides the tokenizer's EOS list
    thinking: bool = False  # thinks without `<think>` tags (a channel the format splits itself)


def _llama3(template: str, has_token: Callable[[str], bool]) -> bool:
    if "<|python_tag|>" in template:
        return True
    return ("<|start_header_id|>" in template and '"parameters"' in template) or (
        not template and has_token("<|python_tag|>")
    )


HARMONY = Family(
    "harmony",
    lambda t, has: ("<|channel|>" in t and "<|message|>" in t) or (has("<|channel|>") and has("<|message|>")),
    lambda tools, think: Harmony(tools),
    ends=(RETURN, CALL),
    thinking=True,
)
FAMILIES = (
    HARMONY,
    Family(
        "gemma4",
        lambda t, has: (CHANNEL in t and CHANNEL_END in t) or (has(CHANNEL) and has(CHANNEL_END)),
        Gemma4,
        ends=(TURN_END, TOOL_RESPONSE),
        thinking=True,
    ),
    Family(
        "llama3",
        _llama3,
        lambda tools, think: JsonCalls(tools, start="<|python_tag|>", tagless=True, pythonic=True),
        ends=("<|eot_id|>", "<|eom_id|>"),
    ),
    Family(
        "deepseek",
        lambda t, has: deepseek.CALLS_BEGIN in t,
        lambda tools, think: ToolCallCollector(
            deepseek.parse_tool_calls, deepseek.CALLS_BEGIN, deepseek.CALLS_END, tools
        ),
    ),
    Family(
        "granite",
        lambda t, has: "<|tool_call|>" in t and "<|start_of_role|>" in t,
        lambda tools, think: JsonCalls(tools, start="<|tool_call|>"),
    ),
    Family(
        "phi4-mini",
        lambda t, has: "<|tool|>" in t and "<|/tool|>" in t,
        lambda tools, think: JsonCalls(tools, start="functools[", reopen="["),
    ),
)


def find_family(template: str, has_token: Callable[[str], bool]) -> Family | None:
    """The family whose output format is ours, from a chat template's text and the vocabulary."""
    return next((f for f in FAMILIES if f.matches(template, has_token)), None)


def tokenizer_family(tokenizer: Any) -> Family | None:
    template = getattr(tokenizer, "chat_template", None)
    return find_family(template if isinstance(template, str) else "", lambda t: _has_token(tokenizer, t))


def call_format(tokenizer: Any, family: Family | None, tools: Tools, think: bool, template: str = "") -> CallFormat:
    """The format one request's answer is read with: the family's, else the Go template's (`template`, the
    one that rendered the prompt, if any), else mlx-lm's parser for the tokenizer."""
    if family is not None:
        return family.make(tools, think)
    if template:
        return template_format(template, tools)
    return ToolCallCollector.from_tokenizer(tokenizer, tools)


def end_token_ids(tokenizer: Any) -> frozenset[int]:
    """The ids of the family's end tokens (Llama 3's `<|eom_id|>`, harmony's `<|call|>`), which end
    generation even where the model's generation_config leaves them out of its EOS list."""
    family = tokenizer_family(tokenizer)
    if family is None:
        return frozenset()
    return frozenset(tokenizer.convert_tokens_to_ids(t) for t in family.ends if _has_token(tokenizer, t))


def _has_token(tokenizer: Any, token: str) -> bool:
    """One vocabulary entry spelled exactly `token` (an unknown token maps to the unk id, or to None)."""
    convert = getattr(tokenizer, "convert_tokens_to_ids", None)
    if convert is None:
        return False
    token_id = convert(token)
    return isinstance(token_id, int) and tokenizer.convert_ids_to_tokens(token_id) == token
