"""The one exception this package raises, and the position prefix of Go's parse errors."""

from __future__ import annotations


class TemplateError(Exception):
    """A template Ollama would reject or that this subset cannot render; the message is fit for users."""


def parse_error(src: str, pos: int, msg: str) -> TemplateError:
    """A lexing or parsing error, located by line as Go's text/template/parse reports it."""
    return TemplateError(f"template: :{src.count(chr(10), 0, pos) + 1}: {msg}")
