"""The one error a GGUF conversion raises: what cannot be converted, said so a user knows what to do."""

from __future__ import annotations


class GGUFError(ValueError):
    """A file that is not GGUF, or an architecture, tensor type or vocabulary we cannot convert.
    `message` is shown to the user as it is (the create and import routes answer it as a 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
