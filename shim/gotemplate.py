"""Ollama prompt templates: the Go ``text/template`` subset they use, executed the way Ollama executes them.

Modelfile ``TEMPLATE`` lines and the ``template`` field of ``/api/generate`` are Go templates run by
Ollama's ``template`` package. Mirroring that here keeps prompts byte-identical with Ollama's, and a
template outside the subset raises :class:`TemplateError` instead of rendering something else.

How the HTTP layer uses it (as ollama/server/routes.go and server/prompt.go do):

* ``/api/chat``: ``Template.parse(model_template).execute(chat_values(messages, tools=..., think=...,
  model_system=..., model_messages=...))``.
* ``/api/generate`` (not ``raw``, non-empty prompt): ``Template.parse(request_template or model_template)
  .execute(generate_values(prompt, system=..., suffix=..., think=..., model_system=...,
  model_messages=...))``; pass ``model_messages=()`` when the request carries the deprecated ``context``.

Left to the caller, as Ollama does it outside ``Template.Execute``: defaulting an unset ``think`` to true
for thinking models, dropping old messages that overflow the context window, ``[img-N]`` image tags, and
the per-model removal of earlier ``<think>`` blocks.

Supported: text, trim markers, comments, pipelines with ``|`` and parentheses, ``if``/``else if``/``else``,
``range`` (``$i, $v :=``, ``else``, ``break``, ``continue``), ``with``/``else with``, variables, the Go
builtins and, or, not, eq, ne, lt, le, gt, ge, len, index, slice (two indexes), print, printf (%s %v %d %t),
println, and Ollama's json, currentDate, yesterdayDate and toTypeScriptType. Rejected: define, template,
block, html/js/urlquery/call, character constants, unknown functions, fields Ollama never provides, and
printing a list of messages (Go prints memory addresses).

One deliberate difference: a tool's ``{{ .Function }}`` and ``{{ .Function.Parameters }}`` print JSON, as
Ollama did before v0.14 and as its pending fix restores (ollama#14601); v0.14+ prints Go struct syntax.
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple


class TemplateError(Exception):
    """A template Ollama would reject or that this subset cannot render; the message is fit for users."""


@dataclass
class Values:
    """Ollama's template.Values; build it with :func:`chat_values` or :func:`generate_values`."""

    messages: list[dict]
    tools: list[dict] | None = None
    suffix: str = ""
    think: bool = False
    think_level: str = ""
    is_think_set: bool = False
    prompt: str = ""  # read only together with ``suffix`` (fill-in-the-middle), as in Ollama


def chat_values(
    messages: list[dict],
    *,
    tools: list[dict] | None = None,
    think: bool | str | None = None,
    model_system: str = "",
    model_messages: Iterable[dict] = (),
) -> Values:
    """Values for ``/api/chat``: Modelfile MESSAGEs first, and its SYSTEM unless the chat opens with one."""
    msgs = [*model_messages, *messages]
    if model_system and (not messages or messages[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": model_system})
    return Values(messages=msgs, tools=tools, **_think_fields(think))


def generate_values(
    prompt: str,
    *,
    system: str = "",
    suffix: str = "",
    think: bool | str | None = None,
    model_system: str = "",
    model_messages: Iterable[dict] = (),
) -> Values:
    """Values for ``/api/generate``: a suffix means fill-in-the-middle, else system, MESSAGEs, user prompt."""
    if suffix:
        return Values(messages=[], prompt=prompt, suffix=suffix, **_think_fields(think))
    msgs = [{"role": "system", "content": system or model_system}] if system or model_system else []
    msgs += [*model_messages, {"role": "user", "content": prompt}]
    return Values(messages=msgs, **_think_fields(think))


def _think_fields(think: bool | str | None) -> dict[str, Any]:
    """api.ThinkValue's Bool() and String(): a level string enables thinking, plain true means "medium"."""
    if isinstance(think, str):
        return {"think": True, "think_level": think, "is_think_set": True}
    return {"think": bool(think), "think_level": "medium" if think else "", "is_think_set": think is not None}


# ---------------------------------------------------------------------------------------------- lexing

_SPACE = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
_WORD_KINDS = {"true": "bool", "false": "bool", "nil": "nil"}
_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+) | (?P<op>:=|[=|,()]) | (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`) | (?P<num>[+-]?(?:0[xX][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
    | (?P<field>\.\w+) | (?P<dot>\.) | (?P<var>\$\w*) | (?P<word>\w+)""",
    re.X,
)
_GO_STRING = re.compile(
    r'"(?:[^"\\]|\\(?:[abfnrtv\\"]|x[\da-fA-F]{2}|[0-7]{3}|u[\da-fA-F]{4}|U[\da-fA-F]{8}))*"'
)


class _Tok(NamedTuple):
    kind: str  # text {{ }} space str raw num field dot var kw bool nil ident eof, or the operator itself
    text: str
    pos: int


def _error(src: str, pos: int, msg: str) -> TemplateError:
    return TemplateError(f"template: :{src.count(chr(10), 0, pos) + 1}: {msg}")


def _right_delim(src: str, i: int) -> int:
    """Length of the closing delimiter at i: 4 for a trimming `` -}}``, 2 for ``}}``, else 0."""
    if src[i : i + 1] in tuple(_SPACE) and src.startswith("-}}", i + 1):
        return 4
    return 2 if src.startswith("}}", i) else 0


def _lex(src: str) -> list[_Tok]:
    """Tokenise like Go's text/template lexer, applying trim markers and dropping comments."""
    toks: list[_Tok] = []
    i, trim = 0, False
    while True:
        j = src.find("{{", i)
        left_trim = j >= 0 and src[j + 2 : j + 3] == "-" and src[j + 3 : j + 4] in tuple(_SPACE)
        text = src[i : len(src) if j < 0 else j]
        text = text.lstrip(_SPACE) if trim else text
        if text := text.rstrip(_SPACE) if left_trim else text:
            toks.append(_Tok("text", text, i))
        if j < 0:
            return [*toks, _Tok("eof", "EOF", len(src))]
        i = j + (4 if left_trim else 2)
        if src.startswith("/*", i):
            close = src.find("*/", i + 2)
            if close < 0 or not (n := _right_delim(src, close + 2)):
                raise _error(
                    src, j, "unclosed comment" if close < 0 else "comment ends before closing delimiter"
                )
            i, trim = close + 2 + n, n == 4
            continue
        toks.append(_Tok("{{", "{{", j))
        depth = 0
        while not (n := _right_delim(src, i)):
            if not (m := _TOKEN.match(src, i)):
                what = "unclosed action" if i >= len(src) else f"unrecognized character in action: {src[i]!r}"
                if src[i : i + 1] == "'":
                    what = "unsupported template construct: character constant"
                raise _error(src, i, what)
            kind, end = m.lastgroup or "", m.end()
            if kind == "space":
                end -= src.startswith("-}}", end)  # the last space belongs to a trimming " -}}"
            elif kind == "op":
                kind = m.group()
                depth += {"(": 1, ")": -1}.get(kind, 0)
                if depth < 0:
                    raise _error(src, i, "unexpected right paren")
            elif kind == "word":
                word = m.group()
                kind = "kw" if word in _KEYWORDS else _WORD_KINDS.get(word, "ident")
            if end > i:
                toks.append(_Tok(kind, src[i:end], i))
            i = end
        if depth:
            raise _error(src, i, "unclosed left paren")
        toks.append(_Tok("}}", "}}", i))
        i, trim = i + n, n == 4


# --------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Node:
    """A parse-tree node; ``text`` is its source (the literal text for _Text), for error messages."""

    pos: int
    text: str


class _Text(_Node):
    """Literal template text, already trimmed."""


class _Dot(_Node):
    """``.``, the current value."""


class _Ident(_Node):
    """A function name."""


class _Loop(_Node):
    """``{{break}}`` or ``{{continue}}``."""


@dataclass(frozen=True)
class _Lit(_Node):
    value: Any  # a string, number, bool or None (nil)


@dataclass(frozen=True)
class _Access(_Node):
    """Field access: on dot (``base`` None, Go's FieldNode), on a variable (``base`` its name, Go's
    VariableNode) or on a parenthesised pipeline (``base`` that node, Go's ChainNode)."""

    base: str | _Node | None
    idents: tuple[str, ...]


@dataclass(frozen=True)
class _Cmd(_Node):
    args: tuple[_Node, ...]


@dataclass(frozen=True)
class _Pipe(_Node):
    """A pipeline; in a node list it is an action, printed unless it declares or assigns variables."""

    decls: tuple[str, ...]
    assign: bool  # `$x = v` rather than `$x := v`
    cmds: tuple[_Cmd, ...]


@dataclass(frozen=True)
class _Branch(_Node):
    kind: str  # if, range or with
    pipe: _Pipe
    body: tuple[_Node, ...]
    else_: tuple[_Node, ...] | None


_ROOT_FIELDS = ("System", "Prompt", "Response", "Suffix", "Messages", "Tools")
_ROOT_FIELDS += ("Think", "ThinkLevel", "IsThinkSet")  # every key Ollama's Execute puts in its value map
_OPERANDS = {"bool", "dot", "field", "ident", "num", "nil", "str", "raw", "var", "("}


class _Parser:
    """Recursive descent over the tokens, following Go's text/template/parse and its parse-time checks."""

    def __init__(self, src: str) -> None:
        self.src, self.toks, self.i = src, _lex(src), 0
        self.vars = ["$"]
        self.range_depth = 0
        # Outside range/with bodies `.` is Ollama's value map, so its fields can be checked while parsing.
        self.dot_is_root = True

    def fail(self, at: _Tok | _Node, msg: str) -> TemplateError:
        return _error(self.src, at.pos, msg)

    def unexpected(self, tok: _Tok, context: str) -> TemplateError:
        return self.fail(tok, f'unexpected "{tok.text}" in {context}')

    def next(self) -> _Tok:
        self.i += 1
        return self.toks[self.i - 1]

    def peek_ns(self) -> _Tok:
        while self.toks[self.i].kind == "space":
            self.i += 1
        return self.toks[self.i]

    def next_ns(self) -> _Tok:
        self.peek_ns()
        return self.next()

    def parse(self) -> tuple[_Node, ...]:
        nodes, end = self.item_list()
        if end != "eof":
            raise self.fail(self.toks[self.i - 1], f"unexpected {{{{{end}}}}}")
        return nodes

    def item_list(self) -> tuple[tuple[_Node, ...], str]:
        """Nodes up to an {{end}}, an {{else}} or EOF, and which of those ended them."""
        nodes: list[_Node] = []
        while (tok := self.next()).kind != "eof":
            if tok.kind == "text":
                nodes.append(_Text(tok.pos, tok.text))
                continue
            if tok.kind != "{{":
                raise self.unexpected(tok, "input")
            node = self.action()
            if isinstance(node, str):
                return tuple(nodes), node
            nodes.append(node)
        self.i -= 1
        return tuple(nodes), "eof"

    def action(self) -> _Node | str:
        tok = self.next_ns()
        word = tok.text if tok.kind == "kw" else ""
        if not word:
            self.i -= 1
            return self.pipeline("command", "}}")
        if word in ("if", "range", "with"):
            return self.control(tok)
        if word == "else":  # leave the `if` of `else if` (or `with` of `else with`) for control()
            if (nxt := self.peek_ns()).kind != "kw" or nxt.text not in ("if", "with"):
                self.expect_close(word)
            return word
        if word not in ("end", "break", "continue"):
            raise self.fail(tok, f"unsupported template construct: {{{{{word}}}}}")
        self.expect_close(word)
        if word == "end":
            return word
        if not self.range_depth:
            raise self.fail(tok, f"{{{{{word}}}}} outside {{{{range}}}}")
        return _Loop(tok.pos, word)

    def expect_close(self, context: str) -> None:
        if (tok := self.next_ns()).kind != "}}":
            raise self.unexpected(tok, context)

    def control(self, tok: _Tok) -> _Branch:
        kind, nvars, outer_root = tok.text, len(self.vars), self.dot_is_root
        pipe = self.pipeline(kind, "}}")
        self.range_depth += kind == "range"
        self.dot_is_root = outer_root and kind == "if"  # range and with bodies move the dot
        body, end = self.item_list()
        self.range_depth -= kind == "range"
        self.dot_is_root = outer_root
        else_ = None
        if end == "eof":
            raise self.fail(self.toks[self.i], "unexpected EOF")
        if end == "else":
            if kind != "range" and (nxt := self.peek_ns()).kind == "kw" and nxt.text == kind:
                self.next()  # {{else if}} and {{else with}} nest a branch that shares the {{end}}
                else_ = (self.control(nxt),)
            else:
                else_, end = self.item_list()
                if end != "end":
                    raise self.fail(self.toks[self.i - 1], f"expected end; found {end}")
        del self.vars[nvars:]
        return _Branch(tok.pos, kind, kind, pipe, body, else_)

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_ns()
        decls: list[str] = []
        assign = False
        while (var := self.peek_ns()).kind == "var":
            j = self.i + 1
            while self.toks[j].kind == "space":
                j += 1
            if (op := self.toks[j].kind) not in (":=", "=", ","):
                break
            self.i = j + 1
            decls.append(var.text)
            self.vars.append(var.text)
            if op != ",":
                assign = op == "="
                break
            if context != "range" or len(decls) > 1:
                raise self.fail(var, f"too many declarations in {context}")
            if self.peek_ns().kind not in ("var", "}}", ")"):
                raise self.fail(var, "range can only initialize variables")
        cmds: list[_Cmd] = []
        while (tok := self.next_ns()).kind != end:
            if tok.kind not in _OPERANDS:
                raise self.unexpected(tok, context)
            self.i -= 1
            cmds.append(self.command())
        if not cmds:
            raise self.fail(tok, f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], (_Lit, _Dot)):
                raise self.fail(cmd, f"non executable command in pipeline stage {stage}")
        return _Pipe(start.pos, self.src[start.pos : tok.pos].strip(), tuple(decls), assign, tuple(cmds))

    def command(self) -> _Cmd:
        start = self.peek_ns()
        args: list[_Node] = []
        while True:
            self.peek_ns()
            if (node := self.operand()) is not None:
                args.append(node)
            if (tok := self.next()).kind == "space":
                continue
            if tok.kind in ("}}", ")"):
                self.i -= 1
            elif tok.kind != "|":
                raise self.unexpected(tok, "operand")
            break
        if not args:
            raise self.fail(start, "empty command")
        return _Cmd(start.pos, self.src[start.pos : tok.pos].strip(), tuple(args))

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None or self.toks[self.i].kind != "field":
            return node
        idents: list[str] = []
        while self.toks[self.i].kind == "field":
            idents.append(self.next().text[1:])
        text = self.src[node.pos : self.toks[self.i].pos]
        if isinstance(node, (_Lit, _Dot)):
            raise self.fail(node, f"unexpected . after term {node.text!r}")
        if not isinstance(node, _Access) or isinstance(node.base, _Node):
            return _Access(node.pos, text, node, tuple(idents))
        if node.base == "$":
            self.check_root_field(node, idents[0])
        return _Access(node.pos, text, node.base, node.idents + tuple(idents))

    def term(self) -> _Node | None:
        tok = self.next_ns()
        kind, text = tok.kind, tok.text
        if kind == "ident":
            if text in ("call", "html", "js", "urlquery"):
                raise self.fail(tok, f'unsupported template construct: function "{text}"')
            if text not in _FUNCS and text not in ("and", "or"):
                raise self.fail(tok, f'function "{text}" not defined')
            return _Ident(tok.pos, text)
        if kind == "field":
            if self.dot_is_root:
                self.check_root_field(tok, text[1:])
            return _Access(tok.pos, text, None, (text[1:],))
        if kind == "var":
            if text not in self.vars:
                raise self.fail(tok, f'undefined variable "{text}"')
            return _Access(tok.pos, text, text, ())
        if kind == "(":
            pipe = self.pipeline("parenthesized pipeline", ")")
            return replace(pipe, pos=tok.pos, text=self.src[tok.pos : self.toks[self.i - 1].pos + 1])
        if kind in ("str", "raw", "num", "bool", "nil"):
            return _Lit(tok.pos, text, self.literal(tok))
        if kind == "dot":
            return _Dot(tok.pos, text)
        self.i -= 1
        return None

    def check_root_field(self, at: _Tok | _Node, name: str) -> None:
        if name not in _ROOT_FIELDS:
            known = ", ".join(f".{f}" for f in _ROOT_FIELDS)
            raise self.fail(at, f"unknown field .{name}; Ollama templates provide {known}")

    def literal(self, tok: _Tok) -> Any:
        """A constant's value; Go's number, string and escape syntaxes are close enough to Python's to
        evaluate once the Go-only forms are ruled out."""
        text = tok.text
        if tok.kind in ("bool", "nil"):
            return None if text == "nil" else text == "true"
        if tok.kind == "raw":
            return text[1:-1].replace("\r", "")
        try:
            if tok.kind == "str":
                if not _GO_STRING.fullmatch(text):
                    raise ValueError
                return ast.literal_eval(text)
            if text.lstrip("+-")[:2] not in ("0x", "0X") and any(c in text for c in ".eE"):
                return float(text)
            return int(text, 0)
        except (ValueError, SyntaxError):
            raise self.fail(tok, f"unsupported template construct: literal {text}") from None


def _identifiers(node: Any) -> Iterator[str]:
    """Field and variable names as Ollama's template.Identifiers finds them (it skips chains)."""
    if isinstance(node, tuple):
        for child in node:
            yield from _identifiers(child)
    elif isinstance(node, _Branch):
        yield from _identifiers((node.pipe, node.body, node.else_ or ()))
    elif isinstance(node, _Pipe):
        for cmd in node.cmds:
            yield from _identifiers(cmd.args)
    elif isinstance(node, _Access) and not isinstance(node.base, _Node):
        yield from (node.base, *node.idents) if node.base else node.idents


def _cut_after_response(nodes: tuple[_Node, ...]) -> tuple[_Node, ...]:
    """Port of Ollama's deleteNode: keep the first ``.Response`` field and drop everything after it.

    Like Ollama it walks lists and branch bodies but not branch conditions, and a pipeline left without
    arguments drops its whole action (so ``{{ .Response | f }}`` disappears).
    """
    cut = False

    def walk(node: Any) -> Any:
        nonlocal cut
        if isinstance(node, _Access) and node.base is None and "Response" in node.idents:
            cut = True
            return node
        if cut:
            return None
        if isinstance(node, tuple):
            return tuple(kept for kept in map(walk, node) if kept is not None)
        if isinstance(node, _Branch):
            body = walk(node.body)
            if node.else_ is None:
                return replace(node, body=body)
            if (else_ := walk(node.else_)) is None:  # Go's deleteNode panics on this nil list
                raise TemplateError("template: cannot cut after a .Response that is followed by an {{else}}")
            return replace(node, body=body, else_=else_)
        if isinstance(node, _Pipe):
            cmds = []
            for cmd in node.cmds:
                if not (args := tuple(kept for kept in map(walk, cmd.args) if kept is not None)):
                    return None
                cmds.append(replace(cmd, args=args))
            return replace(node, cmds=tuple(cmds))
        return node

    return walk(nodes)


# ------------------------------------------------------------------------------------------- Go values


class _GoType(NamedTuple):
    name: str
    fields: tuple[tuple[str, str, str], ...]  # (Go field, JSON key, omitempty rule: "", "empty" or "nil")
    stringer: bool = False  # has a String() method returning its JSON


@dataclass(frozen=True, eq=False)
class _Struct:
    type: _GoType
    values: dict[str, Any]


class _GoList(list):
    """A Go slice: ``nil`` marshals as null; ``stringer`` marks templateTools, which prints as JSON."""

    def __init__(self, items: Iterable[Any] = (), *, nil: bool = False, stringer: bool = False) -> None:
        super().__init__(items)
        self.nil, self.stringer = nil, stringer


class _GoMap(dict):
    """A Go map: ``stringer`` for templateArgs/templateProperties (print as JSON, nil as ``{}``),
    ``ordered`` for api.ToolPropertiesMap (marshals in insertion order, not sorted), ``zero`` the value a
    missing key yields (Go's zero value of the element type: a struct for templateProperties)."""

    def __init__(
        self,
        items: dict,
        *,
        nil: bool = False,
        stringer: bool = False,
        ordered: bool = False,
        zero: Any = None,
    ) -> None:
        super().__init__(items)
        self.nil, self.stringer, self.ordered, self.zero = nil, stringer, ordered, zero


def _lookup(mapping: dict, key: str) -> Any:
    return mapping.get(key, mapping.zero if isinstance(mapping, _GoMap) else None)


class _PropertyType(list):
    """api.PropertyType: a JSON Schema type list that prints and marshals as a bare string when single."""


def _go_struct(name: str, *fields: str, stringer: bool = False) -> _GoType:
    """A struct type; a field is "Go" or "Go:json" or "Go:json:rule" (rule "empty" or "nil" for omitempty)."""
    return _GoType(
        name, tuple(tuple((f + "::").split(":")[:3]) if ":" in f else (f, f, "") for f in fields), stringer
    )


_MESSAGE = _go_struct(
    "*template.templateMessage",
    "Role",
    "Content",
    "Thinking",
    "Images",
    "ToolCalls",
    "ToolName",
    "ToolCallID",
)
_TOOL_CALL = _go_struct("template.templateToolCall", "ID", "Function")
_TOOL_CALL_FUNCTION = _go_struct("template.templateToolCallFunction", "Index", "Name", "Arguments")
_TOOL = _go_struct(
    "template.templateTool", "Type:type", "Items:items:nil", "Function:function", stringer=True
)
_TOOL_FUNCTION = _go_struct(
    "template.templateToolFunction",
    "Name:name",
    "Description:description",
    "Parameters:parameters",
    stringer=True,
)
_PARAMETERS = _go_struct(
    "template.templateToolFunctionParameters",
    "Type:type",
    "Defs:$defs:nil",
    "Items:items:nil",
    "Required:required:empty",
    "Properties:properties",
    stringer=True,
)
_PROPERTY = _go_struct(
    "api.ToolProperty",
    "AnyOf:anyOf:empty",
    "Type:type:empty",
    "Items:items:nil",
    "Description:description:empty",
    "Enum:enum:empty",
    "Properties:properties:nil",
)


def _any(value: Any) -> Any:
    """A JSON value as Go decodes it into ``any``: every number becomes a float64."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_any(v) for v in value]
    raise TemplateError(f"template: unsupported value of type {type(value).__name__}")


def _message(m: dict) -> _Struct:
    """Ollama's templateMessage for an API message dict."""
    calls = m.get("tool_calls") or []
    return _Struct(
        _MESSAGE,
        {
            "Role": m.get("role") or "",
            "Content": m.get("content") or "",
            "Thinking": m.get("thinking", ""),
            "Images": _GoList(m.get("images") or [], nil=not m.get("images")),
            "ToolCalls": _GoList(map(_tool_call, calls), nil=not calls),
            "ToolName": m.get("tool_name", ""),
            "ToolCallID": m.get("tool_call_id", ""),
        },
    )


def _tool_call(call: dict) -> _Struct:
    fn = call.get("function") or {}
    if (args := fn.get("arguments")) is not None and not isinstance(args, dict):
        raise TemplateError("template: tool call arguments must be a JSON object")
    return _Struct(
        _TOOL_CALL,
        {
            "ID": call.get("id", ""),
            "Function": _Struct(
                _TOOL_CALL_FUNCTION,
                {
                    "Index": fn.get("index", 0),
                    "Name": fn.get("name", ""),
                    "Arguments": _GoMap(_any(args or {}), nil=args is None, stringer=True),
                },
            ),
        },
    )


def _tool(tool: dict) -> _Struct:
    """Ollama's templateTool; JSON Schema keys that api.Tool does not declare are dropped, as Go does."""
    fn = tool.get("function") or {}
    params = fn.get("parameters") or {}
    props = params.get("properties")
    parameters = _Struct(
        _PARAMETERS,
        {
            "Type": params.get("type", ""),
            "Defs": _any(params.get("$defs")),
            "Items": _any(params.get("items")),
            "Required": list(params.get("required") or []),
            "Properties": _GoMap(
                {k: _property(v) for k, v in (props or {}).items()},
                nil=props is None,
                stringer=True,
                zero=_property({}),
            ),
        },
    )
    function = _Struct(
        _TOOL_FUNCTION,
        {"Name": fn.get("name", ""), "Description": fn.get("description", ""), "Parameters": parameters},
    )
    return _Struct(
        _TOOL, {"Type": tool.get("type", ""), "Items": _any(tool.get("items")), "Function": function}
    )


def _property(prop: dict) -> _Struct:
    kind, nested = prop.get("type"), prop.get("properties")
    return _Struct(
        _PROPERTY,
        {
            "AnyOf": [_property(p) for p in prop.get("anyOf") or []],
            "Type": _PropertyType([kind] if isinstance(kind, str) else kind or []),
            "Items": _any(prop.get("items")),
            "Description": prop.get("description", ""),
            "Enum": _any(prop.get("enum") or []),
            "Properties": None
            if nested is None
            else _GoMap({k: _property(v) for k, v in nested.items()}, ordered=True, zero=_property({})),
        },
    )


def _go_type(value: Any) -> str:
    if isinstance(value, _Struct):
        return value.type.name
    names = {bool: "bool", int: "int", float: "float64", str: "string", type(None): "<nil>"}
    return names.get(type(value)) or (
        "map[string]interface {}" if isinstance(value, dict) else "[]interface {}"
    )


def _is_stringer(value: Any) -> bool:
    if isinstance(value, (_GoList, _GoMap)):
        return value.stringer
    return isinstance(value, _PropertyType) or (isinstance(value, _Struct) and value.type.stringer)


def _string(value: Any) -> str:
    """The String() method of the types that have one."""
    if isinstance(value, _PropertyType):
        return value[0] if len(value) == 1 else "[" + " ".join(value) + "]" if value else ""
    return "{}" if isinstance(value, _GoMap) and not value else _marshal(value)


def _marshal(value: Any) -> str:
    """json.Marshal with its error dropped to "", as Ollama's json function and String() methods do."""
    try:
        return _json(value)
    except ValueError:
        return ""


def _fmt(value: Any, nested: bool = False) -> str:
    """Go's fmt %v, calling String() on the JSON-printing types at any depth."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value, json=False)
    if value is None:
        return "<nil>"
    if _is_stringer(value):
        return _string(value)
    if isinstance(value, _Struct):
        if nested and value.type.name.startswith("*"):
            raise TemplateError(
                "template: unsupported template construct: printing a list of messages "
                "(Go prints their memory addresses)"
            )
        return "{" + " ".join(_fmt(v, True) for v in value.values.values()) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{_fmt(k)}:{_fmt(value[k], True)}" for k in sorted(value)) + "]"
    return "[" + " ".join(_fmt(v, True) for v in value) + "]"


def _float(x: float, *, json: bool) -> str:
    """The shortest round-tripping text, as Go writes it: fmt's %v uses an exponent when the decimal
    exponent is below -4 or at least 6 (1e+06), encoding/json when abs(x) is outside [1e-6, 1e21)."""
    if math.isnan(x) or math.isinf(x):
        if json:
            raise ValueError("json: unsupported value")
        return "NaN" if math.isnan(x) else "+Inf" if x > 0 else "-Inf"
    _, digit_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # abs(x) == 0.<digits> * 10**point
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if (x != 0 and not 1e-6 <= abs(x) < 1e21) if json else not -4 <= point - 1 < 6:
        e = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if e < 0 else '+'}{abs(e):0{1 if json and e < 0 else 2}d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_JSON_SPECIAL = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _json_str(s: str) -> str:
    """A JSON string as Go writes it: HTML-safe (<, >, & escaped), U+2028/2029 escaped, bad UTF-8 as
    U+FFFD."""

    def escape(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in _JSON_ESCAPES:
            return _JSON_ESCAPES[ch]
        return "\\ufffd" if "\ud800" <= ch <= "\udfff" else f"\\u{ord(ch):04x}"

    return '"' + _JSON_SPECIAL.sub(escape, s) + '"'


def _json(value: Any) -> str:
    """Go's encoding/json.Marshal: compact, struct fields in declaration order, map keys sorted."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int)):
        return _fmt(value)
    if isinstance(value, float):
        return _float(value, json=True)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, _PropertyType) and len(value) == 1:
        return _json_str(value[0])
    if isinstance(value, list):
        return "null" if isinstance(value, _GoList) and value.nil else "[" + ",".join(map(_json, value)) + "]"
    if isinstance(value, _Struct):
        items = [
            (key, value.values[name])
            for name, key, omit in value.type.fields
            if not (
                omit == "nil" and value.values[name] is None or omit == "empty" and not value.values[name]
            )
        ]
    elif isinstance(value, _GoMap) and value.nil:
        return "null"
    else:
        items = [
            (k, value[k]) for k in (value if isinstance(value, _GoMap) and value.ordered else sorted(value))
        ]
    return "{" + ",".join(f"{_json_str(k)}:{_json(v)}" for k, v in items) + "}"


# ------------------------------------------------------------------------------------------- functions


class _FuncError(Exception):
    """A template function failed; the executor adds where."""


def _truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, slices and maps are false; structs are true."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return value != 0
    return len(value) > 0 if isinstance(value, (str, list, dict)) else True


def _kind(value: Any) -> str:
    """The Go basic kind that decides comparability: Go never compares an int with a float64."""
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("string", str)):
        if isinstance(value, types):
            return kind
    return "nil" if value is None else "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _FuncError("missing argument for comparison")
    for b in others:
        ka, kb = _kind(a), _kind(b)
        if "nil" in (ka, kb):
            equal = ka == kb
        elif ka != kb:
            raise _FuncError("incompatible types for comparison")
        elif ka == "other" and not (isinstance(a, _Struct) and isinstance(b, _Struct)):
            raise _FuncError(f"non-comparable type {_go_type(a)}")
        else:
            equal = a is b if ka == "other" else a == b
        if equal:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise _FuncError("invalid type for comparison")
    if ka != kb:
        raise _FuncError("incompatible types for comparison")
    return a < b


def _len(value: Any) -> int:
    if isinstance(value, (str, list, dict)):
        return len(value.encode() if isinstance(value, str) else value)  # Go counts a string's bytes
    raise _FuncError("len of nil pointer" if value is None else f"len of type {_go_type(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict) and isinstance(key, str):
            item = _lookup(item, key)
        elif isinstance(item, (list, str)) and _kind(key) == "int":
            seq = item.encode() if isinstance(item, str) else item  # a string indexes to a byte
            if not 0 <= key < len(seq):
                raise _FuncError(f"index out of range: {key}")
            item = seq[key]
        else:
            raise _FuncError(
                "index of untyped nil"
                if item is None
                else f"cannot index {_go_type(item)} with {_go_type(key)}"
            )
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, (list, str)) or len(bounds) > 2 or any(_kind(b) != "int" for b in bounds):
        raise _FuncError(
            f"unsupported template construct: slice of {_go_type(item)} with {len(bounds)} indexes"
        )
    seq = item.encode() if isinstance(item, str) else item  # Go slices strings by bytes
    lo, hi = (*bounds, len(seq))[:2] if bounds else (0, len(seq))
    if not 0 <= lo <= hi <= len(seq):
        raise _FuncError(f"index out of range: {lo}:{hi}")
    return seq[lo:hi].decode("utf-8", "replace") if isinstance(item, str) else seq[lo:hi]


def _operand(value: Any) -> str:
    """An fmt operand: unlike a template action, which dereferences first, fmt shows a pointer as &{...}."""
    return ("&" if isinstance(value, _Struct) and value.type.name.startswith("*") else "") + _fmt(value)


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    for n, arg in enumerate(args):
        if n and not isinstance(arg, str) and not isinstance(args[n - 1], str):
            out.append(" ")
        out.append(_operand(arg))
    return "".join(out)


_VERB = re.compile(r"%(.?)", re.S)
_VERB_ACCEPTS = {
    "s": lambda a: isinstance(a, str) or _is_stringer(a),
    "v": lambda a: True,
    "d": lambda a: _kind(a) == "int",
    "t": lambda a: isinstance(a, bool),
}


def _printf(format_: Any, *args: Any) -> str:
    """fmt.Sprintf for %s %v %d %t and %%; other verbs, flags and mismatched operands are rejected."""
    if not isinstance(format_, str):
        raise _FuncError(f"wrong type for value; expected string; got {_go_type(format_)}")
    queue = list(args)

    def verb(m: re.Match[str]) -> str:
        if (v := m.group(1)) == "%":
            return "%"
        if v not in _VERB_ACCEPTS:
            raise _FuncError(f"unsupported template construct: printf verb %{v}")
        if not queue:
            raise _FuncError(f"missing operand for %{v}")
        if not _VERB_ACCEPTS[v](arg := queue.pop(0)):
            raise _FuncError(f"unsupported template construct: %{v} of {_go_type(arg)}")
        return _operand(arg)

    out = _VERB.sub(verb, format_)
    if queue:
        raise _FuncError(f"{len(queue)} extra operand(s)")
    return out


_TS_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "array": "any[]",
    "object": "Record<string, any>",
    "null": "null",
}


def _ts_type(value: Any) -> str:
    """Ollama's toTypeScriptType for a tool parameter property."""
    if not (isinstance(value, _Struct) and value.type is _PROPERTY):
        return "any"
    if value.values["AnyOf"]:
        return " | ".join(map(_ts_type, value.values["AnyOf"]))
    return " | ".join(_TS_TYPES.get(t, "any") for t in value.values["Type"]) or "any"


_FUNCS: dict[str, Any] = {  # `and` and `or` short-circuit, so the executor runs them itself
    "not": lambda v: not _truth(v),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _lt,
    "le": lambda a, b: _lt(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_lt(a, b) or _eq(a, b)),
    "ge": lambda a, b: not _lt(a, b),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _printf,
    "println": lambda *a: " ".join(map(_operand, a)) + "\n",
    "json": _marshal,
    "toTypeScriptType": _ts_type,
    "currentDate": lambda *_: date.today().isoformat(),
    "yesterdayDate": lambda *_: (date.today() - timedelta(days=1)).isoformat(),
}
_ARITY = {
    "and": (1, None),
    "or": (1, None),
    "not": (1, 1),
    "eq": (1, None),
    "ne": (2, 2),
    "lt": (2, 2),
    "le": (2, 2),
    "gt": (2, 2),
    "ge": (2, 2),
    "len": (1, 1),
    "index": (1, None),
    "slice": (1, None),
    "printf": (1, None),
    "json": (1, 1),
    "toTypeScriptType": (1, 1),
}


# ------------------------------------------------------------------------------------------- execution

_NO_ARG = object()  # Go's missingVal: nothing piped in from a previous command


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Exec:
    """Walks a parsed template like text/template's exec.go, over Ollama's value map."""

    def __init__(self, src: str, root: dict[str, Any]) -> None:
        self.src, self.root = src, root
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []
        self.at: _Node = _Text(0, "")

    def fail(self, msg: str) -> TemplateError:
        pos, text = self.at.pos, self.at.text
        line, col = self.src.count("\n", 0, pos) + 1, pos - self.src.rfind("\n", 0, pos) - 1
        context = text if len(text) <= 20 else text[:20] + "..."
        return TemplateError(f'template: :{line}:{col}: executing "" at <{context}>: {msg}')

    def walk(self, dot: Any, nodes: tuple[_Node, ...]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Pipe):
                value = self.pipeline(dot, node)
                if not node.decls:
                    self.out.append("<no value>" if value is None else _fmt(value))
            elif isinstance(node, _Loop):
                raise _Break if node.text == "break" else _Continue
            elif isinstance(node, _Branch) and node.kind == "range":
                self.range(dot, node)
            elif isinstance(node, _Branch):
                mark = len(self.vars)
                value = self.pipeline(dot, node.pipe)
                if _truth(value):
                    self.walk(value if node.kind == "with" else dot, node.body)
                elif node.else_ is not None:
                    self.walk(dot, node.else_)
                del self.vars[mark:]

    def range(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        value = self.pipeline(dot, node.pipe)
        body_mark = len(self.vars)  # the pipeline's declared variables are on top: [index,] element
        if isinstance(value, (list, dict)) or value is None:
            items = sorted((value or {}).items()) if isinstance(value, dict) else list(enumerate(value or []))
        else:
            self.at = node
            raise self.fail(f"range can't iterate over {_fmt(value)}")
        decls = node.pipe.decls
        try:
            for key, elem in items:
                if node.pipe.assign:
                    for name, v in zip(decls, (key, elem) if len(decls) > 1 else (elem,), strict=True):
                        self.set_var(name, v)
                elif decls:
                    self.vars[body_mark - 1] = (decls[-1], elem)
                    if len(decls) > 1:
                        self.vars[body_mark - 2] = (decls[0], key)
                with contextlib.suppress(_Continue):
                    self.walk(elem, node.body)
                del self.vars[body_mark:]
        except _Break:
            pass
        if not items and node.else_ is not None:
            self.walk(dot, node.else_)
        del self.vars[mark:]

    def pipeline(self, dot: Any, pipe: _Pipe) -> Any:
        value: Any = _NO_ARG
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decls:
            if pipe.assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: _Cmd, final: Any) -> Any:
        first = self.at = cmd.args[0]
        if isinstance(first, _Ident):
            return self.call(dot, first, cmd.args[1:], final)
        if len(cmd.args) > 1 or final is not _NO_ARG:
            raise self.fail(f"can't give argument to non-function {first.text}")
        if isinstance(first, _Lit) and first.value is None:
            raise self.fail("nil is not a command")
        return self.arg(dot, first)

    def arg(self, dot: Any, node: _Node) -> Any:
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Lit):
            return node.value
        if isinstance(node, _Ident):
            return self.call(dot, node, (), _NO_ARG)
        if isinstance(node, _Pipe):
            return self.pipeline(dot, node)
        assert isinstance(node, _Access)
        if isinstance(node.base, _Node):
            receiver = self.arg(dot, node.base)
        else:
            receiver = dot if node.base is None else self.var(node)
        self.at = node
        for name in node.idents:
            if receiver is self.root and name not in _ROOT_FIELDS:
                raise self.fail(f"unknown field .{name}")
            if isinstance(receiver, _Struct):
                if name not in receiver.values:
                    raise self.fail(f"can't evaluate field {name} in type {receiver.type.name}")
                receiver = receiver.values[name]
            elif isinstance(receiver, dict):
                receiver = _lookup(receiver, name)
            elif receiver is None:
                raise self.fail(f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.fail(f"can't evaluate field {name} in type {_go_type(receiver)}")
        return receiver

    def var(self, node: _Access) -> Any:
        for name, value in reversed(self.vars):
            if name == node.base:
                return value
        self.at = node
        raise self.fail(f"undefined variable: {node.base}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.fail(f"undefined variable: {name}")

    def call(self, dot: Any, ident: _Ident, arg_nodes: tuple[_Node, ...], final: Any) -> Any:
        name, count = ident.text, len(arg_nodes) + (final is not _NO_ARG)
        low, high = _ARITY.get(name, (0, None))
        if count < low or (high is not None and count > high):
            self.at = ident
            raise self.fail(
                f"wrong number of args for {name}: want {low if low == high else f'at least {low}'} "
                f"got {count}"
            )
        if name in ("and", "or"):  # evaluate lazily, returning the operand that decided
            value = None
            for node in arg_nodes:
                if _truth(value := self.arg(dot, node)) == (name == "or"):
                    return value
            return value if final is _NO_ARG else final
        args = [self.arg(dot, node) for node in arg_nodes] + ([] if final is _NO_ARG else [final])
        try:
            return _FUNCS[name](*args)
        except _FuncError as e:
            self.at = ident
            raise self.fail(f"error calling {name}: {e}") from None


# --------------------------------------------------------------------------------------------- Ollama


def _collate(messages: list[dict]) -> tuple[str, list[dict]]:
    """Ollama's collate: all system contents joined; consecutive same-role messages (but tool results)
    merged into one."""
    system = "\n\n".join(m.get("content") or "" for m in messages if m.get("role") == "system")
    collated: list[dict] = []
    for m in messages:
        if collated and collated[-1].get("role") == m.get("role") and m.get("role") != "tool":
            collated[-1] = {
                **collated[-1],
                "content": (collated[-1].get("content") or "") + "\n\n" + (m.get("content") or ""),
            }
        else:
            collated.append(m)
    return system, collated


class Template:
    """A parsed Ollama prompt template."""

    def __init__(self, source: str, nodes: tuple[_Node, ...], uses_messages: bool) -> None:
        self._source = source
        self._nodes = nodes
        self._uses_messages = uses_messages

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse like Ollama's template.Parse, which appends ``{{ .Response }}`` to a template that uses
        neither ``.Messages`` nor ``.Response``."""
        nodes = _Parser(text).parse()
        names = {name.lower() for name in _identifiers(nodes)}
        if not names & {"messages", "response"}:
            response = _Access(len(text), ".Response", None, ("Response",))
            nodes += (_Pipe(len(text), ".Response", (), False, (_Cmd(len(text), ".Response", (response,)),)),)
        return cls(text, nodes, "messages" in names)

    def execute(self, values: Values) -> str:
        """Render like Ollama's Template.Execute.

        Fill-in-the-middle values render once. A template that uses ``.Messages`` renders once with all
        (collated) messages. Any other ("legacy") template renders once per system/prompt/response turn,
        the last turn with the template cut after ``.Response`` so that no end-of-turn marker follows the
        text the model is to continue.
        """
        system, messages = _collate(values.messages)
        think = {"Think": values.think, "ThinkLevel": values.think_level, "IsThinkSet": values.is_think_set}
        if values.prompt and values.suffix:
            return self._run(
                self._nodes, {"Prompt": values.prompt, "Suffix": values.suffix, "Response": "", **think}
            )
        if self._uses_messages:
            return self._run(
                self._nodes,
                {
                    "System": system,
                    "Messages": _GoList(map(_message, messages), nil=not messages),
                    "Tools": _GoList(map(_tool, values.tools or []), nil=values.tools is None, stringer=True),
                    "Response": "",
                    **think,
                },
            )
        out, turn = [], {"System": "", "Prompt": "", "Response": ""}
        for m in messages:
            role = m.get("role")
            system_after_turn = role == "system" and (turn["Prompt"] or turn["Response"])
            if system_after_turn or (role == "user" and turn["Response"]):
                out.append(self._run(self._nodes, {**turn, **think}))
                turn = dict.fromkeys(turn, "")
            if key := {"system": "System", "user": "Prompt", "assistant": "Response"}.get(role or ""):
                turn[key] = m.get("content") or ""
        out.append(self._run(_cut_after_response(self._nodes), {**turn, **think}))
        return "".join(out)

    def _run(self, nodes: tuple[_Node, ...], root: dict[str, Any]) -> str:
        state = _Exec(self._source, root)
        state.walk(root, nodes)
        return "".join(state.out)
