"""Parsing tokens into a tree, following Go's text/template/parse and its parse-time checks.

The tree's nodes are defined here too; :func:`identifiers` walks it as Ollama's template.Identifiers does.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from shim.gotemplate.errors import TemplateError, parse_error
from shim.gotemplate.functions import FUNCS
from shim.gotemplate.lexer import Token, lex


@dataclass(frozen=True)
class Node:
    """A parse-tree node; ``text`` is its source (the literal text for Text), for error messages."""

    pos: int
    text: str


class Text(Node):
    """Literal template text, already trimmed."""


class Dot(Node):
    """``.``, the current value."""


class Ident(Node):
    """A function name."""


class Loop(Node):
    """``{{break}}`` or ``{{continue}}``."""


@dataclass(frozen=True)
class Lit(Node):
    value: Any  # a string, number, bool or None (nil)


@dataclass(frozen=True)
class Access(Node):
    """Field access: on dot (``base`` None, Go's FieldNode), on a variable (``base`` its name, Go's
    VariableNode) or on a parenthesised pipeline (``base`` that node, Go's ChainNode)."""

    base: str | Node | None
    idents: tuple[str, ...]


@dataclass(frozen=True)
class Cmd(Node):
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Pipe(Node):
    """A pipeline; in a node list it is an action, printed unless it declares or assigns variables."""

    decls: tuple[str, ...]
    assign: bool  # `$x = v` rather than `$x := v`
    cmds: tuple[Cmd, ...]


@dataclass(frozen=True)
class Branch(Node):
    kind: str  # if, range or with
    pipe: Pipe
    body: tuple[Node, ...]
    else_: tuple[Node, ...] | None


# Every key Ollama's Execute puts in its value map.
ROOT_FIELDS = ("System", "Prompt", "Response", "Suffix", "Messages", "Tools", "Think", "ThinkLevel", "IsThinkSet")
_OPERANDS = {"bool", "dot", "field", "ident", "num", "nil", "str", "raw", "var", "("}
_GO_STRING = re.compile(r'"(?:[^"\\]|\\(?:[abfnrtv\\"]|x[\da-fA-F]{2}|[0-7]{3}|u[\da-fA-F]{4}|U[\da-fA-F]{8}))*"')


def parse(src: str) -> tuple[Node, ...]:
    """The template's top-level nodes."""
    return _Parser(src).parse()


class _Parser:
    """Recursive descent over the tokens, with Go's parse-time checks and Ollama's known root fields."""

    def __init__(self, src: str) -> None:
        self.src, self.toks, self.i = src, lex(src), 0
        self.vars = ["$"]
        self.range_depth = 0
        # Outside range/with bodies `.` is Ollama's value map, so its fields can be checked while parsing.
        self.dot_is_root = True

    def fail(self, at: Token | Node, msg: str) -> TemplateError:
        return parse_error(self.src, at.pos, msg)

    def unexpected(self, tok: Token, context: str) -> TemplateError:
        return self.fail(tok, f'unexpected "{tok.text}" in {context}')

    def next(self) -> Token:
        self.i += 1
        return self.toks[self.i - 1]

    def peek_ns(self) -> Token:
        while self.toks[self.i].kind == "space":
            self.i += 1
        return self.toks[self.i]

    def next_ns(self) -> Token:
        self.peek_ns()
        return self.next()

    def parse(self) -> tuple[Node, ...]:
        nodes, end = self.item_list()
        if end != "eof":
            raise self.fail(self.toks[self.i - 1], f"unexpected {{{{{end}}}}}")
        return nodes

    def item_list(self) -> tuple[tuple[Node, ...], str]:
        """Nodes up to an {{end}}, an {{else}} or EOF, and which of those ended them."""
        nodes: list[Node] = []
        while (tok := self.next()).kind != "eof":
            if tok.kind == "text":
                nodes.append(Text(tok.pos, tok.text))
                continue
            if tok.kind != "{{":
                raise self.unexpected(tok, "input")
            node = self.action()
            if isinstance(node, str):
                return tuple(nodes), node
            nodes.append(node)
        self.i -= 1
        return tuple(nodes), "eof"

    def action(self) -> Node | str:
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
        return Loop(tok.pos, word)

    def expect_close(self, context: str) -> None:
        if (tok := self.next_ns()).kind != "}}":
            raise self.unexpected(tok, context)

    def control(self, tok: Token) -> Branch:
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
        return Branch(tok.pos, kind, kind, pipe, body, else_)

    def pipeline(self, context: str, end: str) -> Pipe:
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
        cmds: list[Cmd] = []
        while (tok := self.next_ns()).kind != end:
            if tok.kind not in _OPERANDS:
                raise self.unexpected(tok, context)
            self.i -= 1
            cmds.append(self.command())
        if not cmds:
            raise self.fail(tok, f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], (Lit, Dot)):
                raise self.fail(cmd, f"non executable command in pipeline stage {stage}")
        return Pipe(start.pos, self.src[start.pos : tok.pos].strip(), tuple(decls), assign, tuple(cmds))

    def command(self) -> Cmd:
        start = self.peek_ns()
        args: list[Node] = []
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
        return Cmd(start.pos, self.src[start.pos : tok.pos].strip(), tuple(args))

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.toks[self.i].kind != "field":
            return node
        idents: list[str] = []
        while self.toks[self.i].kind == "field":
            idents.append(self.next().text[1:])
        text = self.src[node.pos : self.toks[self.i].pos]
        if isinstance(node, (Lit, Dot)):
            raise self.fail(node, f"unexpected . after term {node.text!r}")
        if not isinstance(node, Access) or isinstance(node.base, Node):
            return Access(node.pos, text, node, tuple(idents))
        if node.base == "$":
            self.check_root_field(node, idents[0])
        return Access(node.pos, text, node.base, node.idents + tuple(idents))

    def term(self) -> Node | None:
        tok = self.next_ns()
        kind, text = tok.kind, tok.text
        if kind == "ident":
            if text in ("call", "html", "js", "urlquery"):
                raise self.fail(tok, f'unsupported template construct: function "{text}"')
            if text not in FUNCS and text not in ("and", "or"):
                raise self.fail(tok, f'function "{text}" not defined')
            return Ident(tok.pos, text)
        if kind == "field":
            if self.dot_is_root:
                self.check_root_field(tok, text[1:])
            return Access(tok.pos, text, None, (text[1:],))
        if kind == "var":
            if text not in self.vars:
                raise self.fail(tok, f'undefined variable "{text}"')
            return Access(tok.pos, text, text, ())
        if kind == "(":
            pipe = self.pipeline("parenthesized pipeline", ")")
            return replace(pipe, pos=tok.pos, text=self.src[tok.pos : self.toks[self.i - 1].pos + 1])
        if kind in ("str", "raw", "num", "bool", "nil"):
            return Lit(tok.pos, text, self.literal(tok))
        if kind == "dot":
            return Dot(tok.pos, text)
        self.i -= 1
        return None

    def check_root_field(self, at: Token | Node, name: str) -> None:
        if name not in ROOT_FIELDS:
            known = ", ".join(f".{f}" for f in ROOT_FIELDS)
            raise self.fail(at, f"unknown field .{name}; Ollama templates provide {known}")

    def literal(self, tok: Token) -> Any:
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


def identifiers(node: Any) -> Iterator[str]:
    """Field and variable names as Ollama's template.Identifiers finds them (it skips chains)."""
    if isinstance(node, tuple):
        for child in node:
            yield from identifiers(child)
    elif isinstance(node, Branch):
        yield from identifiers((node.pipe, node.body, node.else_ or ()))
    elif isinstance(node, Pipe):
        for cmd in node.cmds:
            yield from identifiers(cmd.args)
    elif isinstance(node, Access) and not isinstance(node.base, Node):
        yield from (node.base, *node.idents) if node.base else node.idents
