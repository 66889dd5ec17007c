"""Executing a parsed template over Ollama's value map, as text/template's exec.go does."""

from __future__ import annotations

import contextlib
from typing import Any

from shim.gotemplate.errors import TemplateError
from shim.gotemplate.functions import ARITY, FUNCS, FuncError, truth
from shim.gotemplate.gofmt import format_value
from shim.gotemplate.govalues import Struct, go_type, lookup
from shim.gotemplate.parser import ROOT_FIELDS, Access, Branch, Cmd, Dot, Ident, Lit, Loop, Node, Pipe, Text


def execute(src: str, nodes: tuple[Node, ...], root: dict[str, Any]) -> str:
    """The text ``nodes`` render with ``root`` as dot; ``src``, their source, locates errors by line and column."""
    state = _Executor(src, root)
    state.walk(root, nodes)
    return "".join(state.out)


_NO_ARG = object()  # Go's missingVal: nothing piped in from a previous command


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Executor:
    """Walks a parsed template like text/template's exec.go, over Ollama's value map."""

    def __init__(self, src: str, root: dict[str, Any]) -> None:
        self.src, self.root = src, root
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []
        self.at: Node = Text(0, "")

    def fail(self, msg: str) -> TemplateError:
        pos, text = self.at.pos, self.at.text
        line, col = self.src.count("\n", 0, pos) + 1, pos - self.src.rfind("\n", 0, pos) - 1
        context = text if len(text) <= 20 else text[:20] + "..."
        return TemplateError(f'template: :{line}:{col}: executing "" at <{context}>: {msg}')

    def walk(self, dot: Any, nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Pipe):
                value = self.pipeline(dot, node)
                if not node.decls:
                    self.out.append("<no value>" if value is None else format_value(value))
            elif isinstance(node, Loop):
                raise _Break if node.text == "break" else _Continue
            elif isinstance(node, Branch) and node.kind == "range":
                self.range(dot, node)
            elif isinstance(node, Branch):
                mark = len(self.vars)
                value = self.pipeline(dot, node.pipe)
                if truth(value):
                    self.walk(value if node.kind == "with" else dot, node.body)
                elif node.else_ is not None:
                    self.walk(dot, node.else_)
                del self.vars[mark:]

    def range(self, dot: Any, node: Branch) -> None:
        mark = len(self.vars)
        value = self.pipeline(dot, node.pipe)
        body_mark = len(self.vars)  # the pipeline's declared variables are on top: [index,] element
        if isinstance(value, (list, dict)) or value is None:
            items = sorted((value or {}).items()) if isinstance(value, dict) else list(enumerate(value or []))
        else:
            self.at = node
            raise self.fail(f"range can't iterate over {format_value(value)}")
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

    def pipeline(self, dot: Any, pipe: Pipe) -> Any:
        value: Any = _NO_ARG
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decls:
            if pipe.assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: Cmd, final: Any) -> Any:
        first = self.at = cmd.args[0]
        if isinstance(first, Ident):
            return self.call(dot, first, cmd.args[1:], final)
        if len(cmd.args) > 1 or final is not _NO_ARG:
            raise self.fail(f"can't give argument to non-function {first.text}")
        if isinstance(first, Lit) and first.value is None:
            raise self.fail("nil is not a command")
        return self.arg(dot, first)

    def arg(self, dot: Any, node: Node) -> Any:
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Ident):
            return self.call(dot, node, (), _NO_ARG)
        if isinstance(node, Pipe):
            return self.pipeline(dot, node)
        assert isinstance(node, Access)
        if isinstance(node.base, Node):
            receiver = self.arg(dot, node.base)
        else:
            receiver = dot if node.base is None else self.var(node)
        self.at = node
        for name in node.idents:
            if receiver is self.root and name not in ROOT_FIELDS:
                raise self.fail(f"unknown field .{name}")
            if isinstance(receiver, Struct):
                if name not in receiver.values:
                    raise self.fail(f"can't evaluate field {name} in type {receiver.type.name}")
                receiver = receiver.values[name]
            elif isinstance(receiver, dict):
                receiver = lookup(receiver, name)
            elif receiver is None:
                raise self.fail(f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.fail(f"can't evaluate field {name} in type {go_type(receiver)}")
        return receiver

    def var(self, node: Access) -> Any:
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

    def call(self, dot: Any, ident: Ident, arg_nodes: tuple[Node, ...], final: Any) -> Any:
        name, count = ident.text, len(arg_nodes) + (final is not _NO_ARG)
        low, high = ARITY.get(name, (0, None))
        if count < low or (high is not None and count > high):
            self.at = ident
            raise self.fail(
                f"wrong number of args for {name}: want {low if low == high else f'at least {low}'} got {count}"
            )
        if name in ("and", "or"):  # evaluate lazily, returning the operand that decided
            value = None
            for node in arg_nodes:
                if truth(value := self.arg(dot, node)) == (name == "or"):
                    return value
            return value if final is _NO_ARG else final
        args = [self.arg(dot, node) for node in arg_nodes] + ([] if final is _NO_ARG else [final])
        try:
            return FUNCS[name](*args)
        except FuncError as e:
            self.at = ident
            raise self.fail(f"error calling {name}: {e}") from None
