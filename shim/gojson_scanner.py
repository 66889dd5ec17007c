"""Go's encoding/json scanner (scanner.go) and the Decoder's value framing (stream.go ``readValue``).

shim.gojson runs this only when the stdlib's fast path fails: it finds where the first value ends, or the
exact text Go's Decoder fails with (``GoJSONError``), byte for byte, one Go state function per byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["MAX_NESTING_DEPTH", "EmptyBody", "GoJSONError", "quote_char", "value_end"]


class GoJSONError(ValueError):
    """``.message`` is the exact text Go's encoding/json Decoder would return."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyBody(GoJSONError):
    """Empty or whitespace-only body: Go returns ``io.EOF`` ("EOF").

    Ollama maps ``errors.Is(err, io.EOF)`` to "missing request body", so the HTTP layer must catch this
    subclass *before* GoJSONError; it subclasses GoJSONError so a handler that forgets still answers 400.
    """

    def __init__(self) -> None:
        super().__init__("EOF")


# Scanner opcodes and parse states, in Go's order (scanner.go).
(
    _CONTINUE,
    _BEGIN_LITERAL,
    _BEGIN_OBJECT,
    _OBJECT_KEY,
    _OBJECT_VALUE,
    _END_OBJECT,
    _BEGIN_ARRAY,
    _ARRAY_VALUE,
    _END_ARRAY,
    _SKIP_SPACE,
    _END,
    _ERROR,
) = range(12)
_PARSE_KEY, _PARSE_VALUE, _PARSE_ARRAY = range(3)
MAX_NESTING_DEPTH = 10000
_SPACE = frozenset(b" \t\r\n")  # Go's isSpace: no \v, \f or U+00A0
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_QUOTE_ESCAPES = {7: r"\a", 8: r"\b", 9: r"\t", 10: r"\n", 11: r"\v", 12: r"\f", 13: r"\r"}
_QUOTE_ESCAPES |= {0x5C: "\\\\", 0x27: "\\'"}  # quoteChar's special case: ' is escaped, " is not

Step = Callable[["_Scanner", int], int]


def quote_char(c: int) -> str:
    """Go's quoteChar: the byte as a rune through strconv.Quote, re-wrapped in single quotes.

    The byte is widened to the rune U+00XX, so 0xC3 prints as 'Ã'; strconv.IsPrint is false for
    controls, U+0080-U+00A0 and U+00AD, which get \\xNN (below 0x20 and 0x7F) or \\u00NN escapes.
    """
    if c in _QUOTE_ESCAPES:
        body = _QUOTE_ESCAPES[c]
    elif 0x20 <= c < 0x7F or (0xA1 <= c <= 0xFF and c != 0xAD):
        body = chr(c)
    elif c < 0x20 or c == 0x7F:
        body = f"\\x{c:02x}"
    else:
        body = f"\\u{c:04x}"
    return f"'{body}'"


class _Scanner:
    """Go's scanner struct: the current step function, the parse-state stack and the first error."""

    __slots__ = ("step", "stack", "err")

    def __init__(self) -> None:
        self.step: Step = _begin_value
        self.stack: list[int] = []
        self.err = ""

    def error(self, c: int, context: str) -> int:
        self.step, self.err = _state_error, f"invalid character {quote_char(c)} {context}"
        return _ERROR

    def push(self, c: int, state: int, op: int) -> int:
        self.stack.append(state)
        return op if len(self.stack) <= MAX_NESTING_DEPTH else self.error(c, "exceeded max depth")

    def pop(self, op: int) -> int:
        self.stack.pop()
        return _go(self, _end_value if self.stack else _end_top, op)


def _go(s: _Scanner, step: Step, op: int = _CONTINUE) -> int:
    """Switch to `step` and report `op`: the body of most Go state transitions."""
    s.step = step
    return op


def _state_error(s: _Scanner, c: int) -> int:
    return _ERROR


def _end_top(s: _Scanner, c: int) -> int:
    return _END  # Go notes "after top-level value" here, but the Decoder stops before reporting it


def _end_value(s: _Scanner, c: int) -> int:
    if not s.stack:
        return _go(s, _end_top, _END)
    if c in _SPACE:
        return _go(s, _end_value, _SKIP_SPACE)
    ps = s.stack[-1]
    if ps == _PARSE_KEY:
        if c == 0x3A:  # ':'
            s.stack[-1] = _PARSE_VALUE
            return _go(s, _begin_value, _OBJECT_KEY)
        return s.error(c, "after object key")
    if ps == _PARSE_VALUE:
        if c == 0x2C:  # ','
            s.stack[-1] = _PARSE_KEY
            return _go(s, _begin_string, _OBJECT_VALUE)
        return s.pop(_END_OBJECT) if c == 0x7D else s.error(c, "after object key:value pair")
    if c == 0x2C:
        return _go(s, _begin_value, _ARRAY_VALUE)
    return s.pop(_END_ARRAY) if c == 0x5D else s.error(c, "after array element")


def _expect(allowed: bytes | frozenset[int], nxt: Callable[[], Step], context: str) -> Step:
    """A state that accepts one byte of `allowed` and moves on to nxt(), else fails with `context`."""

    def step(s: _Scanner, c: int) -> int:
        return _go(s, nxt()) if c in allowed else s.error(c, context)

    return step


def _literal(name: str, rest: str) -> Step:
    """States after a prefix of true/false/null; `rest` is what must still follow."""
    nxt = _literal(name, rest[1:]) if len(rest) > 1 else _end_value
    return _expect(rest[0].encode(), lambda: nxt, f"in literal {name} (expecting '{rest[0]}')")


def _in_string(s: _Scanner, c: int) -> int:
    if c == 0x22:
        return _go(s, _end_value)
    if c == 0x5C:
        return _go(s, _in_string_esc)
    return s.error(c, "in string literal") if c < 0x20 else _CONTINUE


def _in_string_esc(s: _Scanner, c: int) -> int:
    if c in b'bfnrt\\/"':
        return _go(s, _in_string)
    return _go(s, _HEX_ESCAPE[0]) if c == 0x75 else s.error(c, "in string escape code")


def _one(s: _Scanner, c: int) -> int:
    return _CONTINUE if c in _DIGITS else _zero(s, c)


def _zero(s: _Scanner, c: int) -> int:
    return _go(s, _dot) if c == 0x2E else _go(s, _exp) if c in b"eE" else _end_value(s, c)


def _dot0(s: _Scanner, c: int) -> int:
    return _CONTINUE if c in _DIGITS else _go(s, _exp) if c in b"eE" else _end_value(s, c)


def _exp(s: _Scanner, c: int) -> int:
    return _go(s, _exp_sign) if c in b"+-" else _exp_sign(s, c)


def _exp0(s: _Scanner, c: int) -> int:
    return _CONTINUE if c in _DIGITS else _end_value(s, c)


def _neg(s: _Scanner, c: int) -> int:
    return _go(s, _zero if c == 0x30 else _one) if c in _DIGITS else s.error(c, "in numeric literal")


_dot = _expect(_DIGITS, lambda: _dot0, "after decimal point in numeric literal")
_exp_sign = _expect(_DIGITS, lambda: _exp0, "in exponent of numeric literal")
_HEX_CONTEXT = "in \\u hexadecimal character escape"
_HEX_ESCAPE: list[Step] = [  # after \u, \u1, \u12, \u123
    _expect(_HEX, lambda i=i: _HEX_ESCAPE[i + 1] if i < 3 else _in_string, _HEX_CONTEXT) for i in range(4)
]
_LITERAL_START: dict[int, Step] = {
    0x22: _in_string,
    0x2D: _neg,
    0x30: _zero,
    **dict.fromkeys(b"123456789", _one),
    0x74: _literal("true", "rue"),
    0x66: _literal("false", "alse"),
    0x6E: _literal("null", "ull"),
}


def _begin_value(s: _Scanner, c: int) -> int:
    if c in _SPACE:
        return _SKIP_SPACE
    if c == 0x7B:  # '{'
        return s.push(c, _PARSE_KEY, _go(s, _begin_string_or_empty, _BEGIN_OBJECT))
    if c == 0x5B:  # '['
        return s.push(c, _PARSE_ARRAY, _go(s, _begin_value_or_empty, _BEGIN_ARRAY))
    if c in _LITERAL_START:
        return _go(s, _LITERAL_START[c], _BEGIN_LITERAL)
    return s.error(c, "looking for beginning of value")


def _begin_value_or_empty(s: _Scanner, c: int) -> int:
    return _SKIP_SPACE if c in _SPACE else _end_value(s, c) if c == 0x5D else _begin_value(s, c)


def _begin_string_or_empty(s: _Scanner, c: int) -> int:
    if c == 0x7D:
        s.stack[-1] = _PARSE_VALUE
        return _end_value(s, c)
    return _begin_string(s, c)


def _begin_string(s: _Scanner, c: int) -> int:
    if c in _SPACE:
        return _SKIP_SPACE
    if c == 0x22:
        return _go(s, _in_string, _BEGIN_LITERAL)
    return s.error(c, "looking for beginning of object key string")


_STRING_RUN = re.compile(rb'[^"\\\x00-\x1f]+')  # bytes _in_string passes without a state change


def value_end(data: bytes) -> int:
    """Decoder.readValue over a fully buffered body: the length of the first value, or Go's error.

    A value that ends with } or ] stops at once; a scalar stops at the first byte that cannot extend it
    (so b"123abc" and b"01" yield 123 and 0, as in Go). Out of input: a completed value ends; otherwise
    "unexpected EOF" if any non-space byte was seen, else io.EOF.
    """
    s, i, n = _Scanner(), 0, len(data)
    while i < n:
        if s.step is _in_string:  # skip long string runs (base64 images) without a Python step per byte
            m = _STRING_RUN.match(data, i)
            if m is not None:
                i = m.end()
                if i == n:
                    break
        op = s.step(s, data[i])
        if op == _END:
            return i
        if op == _ERROR:
            raise GoJSONError(s.err)
        i += 1
        if op in (_END_OBJECT, _END_ARRAY) and _end_value(s, 0x20) == _END:
            return i
    if s.step(s, 0x20) == _END:
        return n
    if data.strip(b" \t\r\n"):
        raise GoJSONError("unexpected EOF")
    raise EmptyBody
