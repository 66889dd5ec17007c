"""Structured output: Ollama's `format` ("json" or a JSON schema) enforced by constrained decoding.

llguidance computes at each step the set of tokens that keep the output a prefix of some document the
schema accepts (an Earley parser walking a token trie: tens of µs per token on a 151k vocabulary, see
scripts/bench_grammar.py), and the logits processor here pushes every other token to -1e30. EOS is in that
set only once the document is complete, so a generation that stops on EOS is a valid document.

Thinking stays free: while a think block is open nothing is masked except EOS (an answer must follow),
and the grammar starts at the token after the block closes, as Ollama constrains only what follows it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import llguidance
import mlx.core as mx
import numpy as np
import orjson
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from shim.engine.mlx_lm_api import hf_tokenizer
from shim.errors import ShimError

if TYPE_CHECKING:  # a TypedDict of llguidance's type stubs only
    from llguidance._lib import JsonCompileOptions

Processor = Callable[[mx.array, mx.array], mx.array]

# Ollama's format:"json" is llama.cpp's json.gbnf, whose root is an object: any JSON object.
ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Between JSON tokens: nothing, one space, or a line break or two and an indent of at most 20 (llama.cpp's
# bound). Unbounded whitespace lets a small model spend its whole budget on newlines and never close.
WHITESPACE = r"(?: |\n{1,2}[ \t]{0,20})"
COMPILE_OPTIONS: JsonCompileOptions = {"whitespace_pattern": WHITESPACE}
CACHED_SCHEMAS = 32
# Added to a forbidden token's logit: exp() of it is exactly 0 after any temperature, and unlike -inf it
# comes from a multiply-add (MLX's CPU `where` over a 151k row costs ~10x more; scripts/bench_grammar.py).
FORBIDDEN = np.float32(-1e30)
# At most this many digits in a row outside strings (integer part, fraction, exponent), as llama.cpp's
# converter behind Ollama's `format` allows: a small model can otherwise write 3.3333... until num_predict.
MAX_DIGITS = 16
_DIGITS = frozenset(b"0123456789")


class Grammars:
    """llguidance's view of one model's tokenizer (2-4 s to build for a 151k vocabulary on two CPU cores,
    so once per loaded model) and the schemas compiled for it, the most recently used kept."""

    def __init__(self, tokenizer_json: str, eos: list[int]) -> None:
        self.tokenizer = llguidance.LLTokenizer(tokenizer_json, eos_token=eos)
        leading = np.array(
            [_leading_digits(self.tokenizer.decode_bytes([i])) for i in range(self.tokenizer.vocab_size)]
        )
        # digit_room[r]: 1 for the tokens that may follow a run of r digits outside a string.
        self.digit_room = [(leading <= MAX_DIGITS - r).astype(np.uint8) for r in range(MAX_DIGITS + 1)]
        self._compiled: OrderedDict[bytes, llguidance.LLMatcher] = OrderedDict()
        self._lock = threading.Lock()

    def matcher(self, schema: dict[str, Any]) -> llguidance.LLMatcher:
        """A fresh matcher at the start of `schema` (a copy of the cached compiled one)."""
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        with self._lock:
            compiled = self._compiled.pop(key, None)
            if compiled is None:
                compiled = self._compile(schema)
            self._compiled[key] = compiled
            while len(self._compiled) > CACHED_SCHEMAS:
                self._compiled.popitem(last=False)
            return compiled.deep_copy()

    def _compile(self, schema: dict[str, Any]) -> llguidance.LLMatcher:
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(closed(schema), defaults=COMPILE_OPTIONS)
        except ValueError:
            raise ShimError("invalid JSON schema in format") from None
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise ShimError("invalid JSON schema in format")
        return matcher


# Keys whose value is a schema (or a list of schemas), and keys whose value maps names to schemas.
_SUBSCHEMA = frozenset(("items", "additionalProperties", "prefixItems", "anyOf", "oneOf", "allOf", "not", "contains",
                        "if", "then", "else", "additionalItems", "propertyNames", "unevaluatedItems"))  # fmt: skip
_SCHEMA_MAPS = frozenset(("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"))


def closed(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every object that lists properties and says nothing
    about others: Ollama's converter (llama.cpp's json-schema-to-grammar) allows no extra keys unless
    asked, and a model free to add keys can go on adding them instead of closing the object."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: closed(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            out[key] = closed(value)
        else:
            out[key] = value
    open_keys = ("additionalProperties", "patternProperties", "unevaluatedProperties")
    if "properties" in out and not any(k in out for k in open_keys):
        out["additionalProperties"] = False
    return out


def _leading_digits(text: bytes) -> int:
    n = 0
    while n < len(text) and text[n] in _DIGITS:
        n += 1
    return n


_grammars: weakref.WeakKeyDictionary[Any, Grammars] = weakref.WeakKeyDictionary()
_grammars_lock = threading.Lock()


def grammars_for(tokenizer: Any) -> Grammars:
    """The Grammars of a loaded model's tokenizer, built on first use; freed with the tokenizer."""
    with _grammars_lock:
        found = _grammars.get(tokenizer)
        if found is None:
            backend = hf_tokenizer(tokenizer).backend_tokenizer  # the Rust tokenizer under mlx-lm's wrapper
            found = _grammars[tokenizer] = Grammars(backend.to_str(), sorted(tokenizer.eos_token_ids))
        return found


def format_processors(
    tokenizer: Any, fmt: str | dict[str, Any] | None, prompt: list[int], think_start: int | None,
    think_end: int | None, matcher: llguidance.LLMatcher | None = None,
) -> list[Processor]:  # fmt: skip
    """The logits processors that enforce `fmt` for one request (none without a format).
    `think_start`/`think_end` are the single-token think markers when thinking is on, else None; `matcher`:
    `fmt` already compiled (off the engine thread, shim/engine/prep_pool.py), else it is compiled here."""
    if fmt is None:
        return []
    grammars = grammars_for(tokenizer)
    if matcher is None:  # a string format is "json" (the adapters refuse any other): any JSON object
        matcher = grammars.matcher(ANY_OBJECT if isinstance(fmt, str) else fmt)
    thinking = think_end is not None and think_start is not None and bool(prompt) and prompt[-1] == think_start
    return [
        JsonConstraint(
            matcher,
            grammars,
            sorted(tokenizer.eos_token_ids),
            think_start=think_start if think_end is not None else None,
            think_end=think_end,
            thinking=thinking,
        )
    ]


class JsonConstraint:
    """A logits processor, (tokens so far, logits) -> logits, that masks what the grammar forbids.

    The first call sees the prompt; every later call first advances the grammar by the token sampled
    since (the last of `tokens`). States: `before` (no token yet: the grammar's first tokens, or the
    think-start marker), `thinking` (free but for EOS, until the think-end marker), `constrained`.
    While constrained it follows the JSON text just enough to know the run of digits outside strings."""

    def __init__(
        self, matcher: llguidance.LLMatcher, grammars: Grammars, eos: list[int], *, think_start: int | None,
        think_end: int | None, thinking: bool,
    ) -> None:  # fmt: skip
        self.matcher = matcher
        self.grammars = grammars
        self.eos = eos
        self.think_start = think_start
        self.think_end = think_end
        self.state = "thinking" if thinking else "before" if think_start is not None else "constrained"
        self.started = False
        self.bitmask = allocate_token_bitmask(1, grammars.tokenizer.vocab_size)
        self.in_string = self.escaped = False
        self.digits = 0

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if self.started:
            self._advance(int(tokens.reshape(-1)[-1]))
        self.started = True
        width = logits.shape[-1]
        if self.state == "thinking":
            bias = np.zeros(width, dtype=np.float32)
            bias[self.eos] = FORBIDDEN
        else:
            bias = self._grammar_bias(width)
            if self.state == "before" and self.think_start is not None:
                bias[self.think_start] = 0.0
        return logits + mx.array(bias)

    def _advance(self, token: int) -> None:
        if self.state == "thinking":
            if token == self.think_end:
                self.state = "constrained"
            return
        if self.state == "before" and token == self.think_start:
            self.state = "thinking"
            return
        self.state = "constrained"
        if not self.matcher.consume_token(token) or self.matcher.is_error():
            raise ShimError(f"structured output failed: {self.matcher.get_error()}")
        self._follow(self.grammars.tokenizer.decode_bytes([token]))

    def _follow(self, text: bytes) -> None:
        """Track whether the output is inside a JSON string and how many digits it ends with outside one."""
        for c in text:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif c == 0x5C:  # backslash
                    self.escaped = True
                elif c == 0x22:  # quote
                    self.in_string = False
            elif c == 0x22:
                self.in_string, self.digits = True, 0
            elif c in _DIGITS:
                self.digits += 1
            else:
                self.digits = 0

    def _grammar_bias(self, width: int) -> np.ndarray:
        """0 where the grammar allows a token, FORBIDDEN elsewhere, over the logits' width (a model's
        embedding may be wider than its tokenizer: those extra ids are never allowed)."""
        fill_next_token_bitmask(self.matcher, self.bitmask)
        allowed = np.unpackbits(self.bitmask.view(np.uint8), bitorder="little")[:width]
        if allowed.size < width:
            allowed = np.concatenate([allowed, np.zeros(width - allowed.size, dtype=np.uint8)])
        if self.digits and not self.in_string:
            room = self.grammars.digit_room[min(self.digits, MAX_DIGITS)]
            n = min(room.size, allowed.size)
            capped = allowed.copy()
            capped[:n] &= room[:n]
            if capped.any():  # never leave nothing to choose
                allowed = capped
        bias = np.subtract(1, allowed, dtype=np.float32)
        bias *= FORBIDDEN
        return bias
