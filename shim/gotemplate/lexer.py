"""Tokenising a template as Go's text/template lexer does: text, trim markers, comments and action tokens."""

from __future__ import annotations

import re
from typing import NamedTuple

from shim.gotemplate.errors import parse_error

_SPACE = " \t\r\n"
_SPACE_CHARS = frozenset(_SPACE)  # unlike the string, it does not contain "" (a slice past the end)
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
_WORD_KINDS = {"true": "bool", "false": "bool", "nil": "nil"}
_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+) | (?P<op>:=|[=|,()]) | (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`) | (?P<num>[+-]?(?:0[xX][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
    | (?P<field>\.\w+) | (?P<dot>\.) | (?P<var>\$\w*) | (?P<word>\w+)""",
    re.X,
)


class Token(NamedTuple):
    kind: str  # text {{ }} space str raw num field dot var kw bool nil ident eof, or the operator itself
    text: str
    pos: int


def _right_delim(src: str, i: int) -> int:
    """Length of the closing delimiter at i: 4 for a trimming `` -}}``, 2 for ``}}``, else 0."""
    if src[i : i + 1] in _SPACE_CHARS and src.startswith("-}}", i + 1):
        return 4
    return 2 if src.startswith("}}", i) else 0


def lex(src: str) -> list[Token]:
    """Tokenise like Go's text/template lexer, applying trim markers and dropping comments."""
    toks: list[Token] = []
    i, trim = 0, False
    while True:
        j = src.find("{{", i)
        left_trim = j >= 0 and src[j + 2 : j + 3] == "-" and src[j + 3 : j + 4] in _SPACE_CHARS
        text = src[i : len(src) if j < 0 else j]
        text = text.lstrip(_SPACE) if trim else text
        if text := text.rstrip(_SPACE) if left_trim else text:
            toks.append(Token("text", text, i))
        if j < 0:
            return [*toks, Token("eof", "EOF", len(src))]
        i = j + (4 if left_trim else 2)
        if src.startswith("/*", i):
            close = src.find("*/", i + 2)
            if close < 0 or not (n := _right_delim(src, close + 2)):
                what = "unclosed comment" if close < 0 else "comment ends before closing delimiter"
                raise parse_error(src, j, what)
            i, trim = close + 2 + n, n == 4
            continue
        toks.append(Token("{{", "{{", j))
        depth = 0
        while not (n := _right_delim(src, i)):
            if not (m := _TOKEN.match(src, i)):
                what = "unclosed action" if i >= len(src) else f"unrecognized character in action: {src[i]!r}"
                if src[i : i + 1] == "'":
                    what = "unsupported template construct: character constant"
                raise parse_error(src, i, what)
            kind, end = m.lastgroup or "", m.end()
            if kind == "space":
                end -= src.startswith("-}}", end)  # the last space belongs to a trimming " -}}"
            elif kind == "op":
                kind = m.group()
                depth += {"(": 1, ")": -1}.get(kind, 0)
                if depth < 0:
                    raise parse_error(src, i, "unexpected right paren")
            elif kind == "word":
                word = m.group()
                kind = "kw" if word in _KEYWORDS else _WORD_KINDS.get(word, "ident")
            if end > i:
                toks.append(Token(kind, src[i:end], i))
            i = end
        if depth:
            raise parse_error(src, i, "unclosed left paren")
        toks.append(Token("}}", "}}", i))
        i, trim = i + n, n == 4
