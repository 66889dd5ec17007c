"""Modelfiles as Ollama v0.24.0 reads and writes them (its `parser/parser.go`).

`parse_commands` is the same character-by-character state machine as Ollama's ParseFile, so a Modelfile
means the same here as there: commands are case-insensitive, a value runs to the end of its line unless it
opens a `"` or `\"\"\"` quote, which may then span lines (no escapes: a value holding `"` and a newline is
written in triple quotes), `#` starts a comment only at the beginning of a line, PARAMETER may repeat.
Errors carry Ollama's texts, with its `(line N): ` prefix.

`Command.__str__` and `quote` write a command back as `ollama show --modelfile` does, so what `show`
prints, `create` reads back to the same model. `Modelfile.read` turns the commands into what a create needs,
as Ollama's CreateRequest does, refusing what mlx-shim cannot do (ADAPTER, DRAFT, a second FROM) instead of
dropping it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from registry.parameters import coerce_parameter


class ModelfileError(ValueError):
    pass


COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message",
            "requires")  # fmt: skip
ROLES = ("system", "user", "assistant")
# Ollama warns about these and leaves them out (parser.go's deprecatedParameters).
DEPRECATED_PARAMETERS = ("penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
                         "mirostat", "mirostat_tau", "mirostat_eta")  # fmt: skip

_INVALID_COMMAND = "command must be one of " + ", ".join(f'"{c}"' for c in COMMANDS[:-1]) + f', or "{COMMANDS[-1]}"'
_INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
_UNEXPECTED_EOF = "unexpected EOF"


@dataclass(frozen=True)
class Command:
    """One command: `name` is "model" for FROM, the lower-case command, or a PARAMETER's own name; a
    MESSAGE's `args` is "role: content"."""

    name: str
    args: str

    def __str__(self) -> str:
        if self.name == "model":
            return f"FROM {self.args}"
        if self.name in ("license", "template", "system", "adapter", "renderer", "parser", "requires", "draft"):
            return f"{self.name.upper()} {quote(self.args)}"
        if self.name == "message":
            role, _, content = self.args.partition(": ")
            return f"MESSAGE {role} {quote(content)}"
        return f"PARAMETER {self.name} {quote(self.args)}"


def quote(text: str) -> str:
    """Ollama's quote: a value with a newline or an edge space is quoted, in triple quotes when it holds `"`."""
    if "\n" in text or text.startswith(" ") or text.endswith(" "):
        return f'"""{text}"""' if '"' in text else f'"{text}"'
    return text


def _unquote(text: str) -> tuple[str, bool]:
    """The value inside its quotes, and whether the quotes are closed (a value that is still open goes on)."""
    if text.startswith('"""'):
        return (text[3:-3], True) if len(text) >= 6 and text.endswith('"""') else ("", False)
    if text.startswith('"'):
        return (text[1:-1], True) if len(text) >= 2 and text.endswith('"') else ("", False)
    return text, True


class _State(Enum):
    NIL = auto()
    NAME = auto()
    VALUE = auto()
    PARAMETER = auto()
    MESSAGE = auto()
    COMMENT = auto()


class _UnexpectedEOF(Exception):
    pass


def _is_alpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def _next_state(c: str, state: _State) -> tuple[_State, str]:
    """parser.go's parseRuneForState: the next state and the character to keep ("" for none)."""
    space, newline = c in " \t", c in "\r\n"
    if state is _State.NIL:
        if c == "#":
            return _State.COMMENT, ""
        return (_State.NIL, "") if space or newline else (_State.NAME, c)
    if state is _State.NAME:
        if _is_alpha(c):
            return _State.NAME, c
        if space:
            return _State.VALUE, ""
        raise ModelfileError(_INVALID_COMMAND)
    if state is _State.VALUE:
        return (_State.NIL, c) if space or newline else (_State.VALUE, c)
    if state is _State.PARAMETER:
        if _is_alpha(c) or "0" <= c <= "9" or c == "_":
            return _State.PARAMETER, c
        if space:
            return _State.VALUE, ""
        raise _UnexpectedEOF
    if state is _State.MESSAGE:
        if _is_alpha(c):
            return _State.MESSAGE, c
        if space:
            return _State.VALUE, ""
        raise _UnexpectedEOF
    return (_State.NIL, "") if newline else (_State.COMMENT, "")


def parse_commands(text: str) -> list[Command]:
    """Ollama's ParseFile over decoded text (a leading byte-order mark is skipped, as its decoder does)."""
    commands: list[Command] = []
    state, buffer, name, role, line = _State.NIL, "", "", "", 1
    for c in text.removeprefix("\ufeff"):
        if c in "\r\n":
            line += 1
        try:
            following, kept = _next_state(c, state)
        except _UnexpectedEOF:
            raise ModelfileError(f"{_UNEXPECTED_EOF}: {buffer}") from None
        except ModelfileError as e:
            raise ModelfileError(f"(line {line}): {e}") from None
        if following is not state:
            if state is _State.NAME:
                command = buffer.lower()
                if command not in COMMANDS:
                    raise ModelfileError(f"(line {line}): {_INVALID_COMMAND}")
                if command == "parameter":
                    following = _State.PARAMETER
                elif command == "message":
                    following = _State.MESSAGE
                name = "model" if command == "from" else command
            elif state is _State.PARAMETER:
                name = buffer
            elif state is _State.MESSAGE:
                if buffer not in ROLES:
                    raise ModelfileError(f"(line {line}): {_INVALID_ROLE}")
                role = buffer
            elif state is _State.VALUE:
                value, closed = _unquote(buffer.strip())
                if not closed or c in " \t":  # inside quotes, or a space within the value: it goes on
                    buffer += c
                    continue
                commands.append(Command(name, f"{role}: {value}" if role else value))
                role = ""
            buffer, state = "", following
        if kept.isprintable():
            buffer += kept
    if state is _State.VALUE:
        value, closed = _unquote(buffer.strip())
        if not closed:
            raise ModelfileError(_UNEXPECTED_EOF)
        commands.append(Command(name, f"{role}: {value}" if role else value))
    elif state not in (_State.NIL, _State.COMMENT):
        raise ModelfileError(_UNEXPECTED_EOF)
    if not any(command.name == "model" for command in commands):
        raise ModelfileError("no FROM line")
    return commands


@dataclass
class Modelfile:
    """What a Modelfile asks a create for (Ollama's CreateRequest, less what mlx-shim refuses)."""

    from_: str
    system: str | None = None
    template: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    licenses: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, commands: list[Command]) -> Modelfile:
        sources = [c.args for c in commands if c.name == "model"]
        if len(sources) > 1:
            raise ModelfileError("mlx-shim takes one FROM per Modelfile (a second one, such as a vision projector, "
                                 "is not supported)")  # fmt: skip
        modelfile = cls(sources[0])
        for command in commands:
            name, args = command.name, command.args
            if name == "model":
                continue
            if name == "adapter":
                raise ModelfileError("ADAPTER is not supported: mlx-shim does not apply LoRA adapters")
            if name == "draft":
                raise ModelfileError("DRAFT is not supported: mlx-shim has no draft models (speculative decoding)")
            if name in ("system", "template", "renderer", "parser"):
                setattr(modelfile, name, args)
            elif name == "license":
                modelfile.licenses.append(args)
            elif name == "requires":
                modelfile.requires = _semver(args)
            elif name == "message":
                role, _, content = args.partition(": ")
                modelfile.messages.append({"role": role, "content": content})
            elif name in DEPRECATED_PARAMETERS:
                modelfile.warnings.append(f"warning: parameter {name} is deprecated")
            else:
                key, value = coerce_parameter(name, args)
                if key == "stop":
                    modelfile.parameters.setdefault("stop", []).append(value)
                else:
                    modelfile.parameters[key] = value
        return modelfile


def parse_modelfile(text: str) -> Modelfile:
    return Modelfile.read(parse_commands(text))


_SEMVER = re.compile(r"v(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*))?)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


def _semver(text: str) -> str:
    """REQUIRES as Ollama takes it: golang.org/x/mod/semver's syntax, with or without the leading `v`."""
    version = text if text.startswith("v") else "v" + text
    if not _SEMVER.fullmatch(version):
        raise ModelfileError("requires must be a valid semver (e.g. 0.14.0)")
    return version[1:]
