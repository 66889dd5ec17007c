"""The one error a GGUF conversion raises: what cannot be converted, said so a user knows what to do."""

from __future__ import annotations

from shim.errors import Kind, ShimError


class GGUFError(ShimError, ValueError):
    """A file that is not GGUF, or an architecture, tensor type or vocabulary we cannot convert.
    `message` is shown to the user as it is (a create answers it as a 400; an import skips the model with it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Kind.BAD_INPUT)
