"""The MLX engine: everything that touches MLX lives under this package."""

from shim.engine.engine import Engine, collect
from shim.engine.types import (
    CompletionRequest,
    Done,
    EmbedRequest,
    EmbedResult,
    EngineError,
    Infill,
    Message,
    Piece,
)

__all__ = [
    "CompletionRequest",
    "Done",
    "EmbedRequest",
    "EmbedResult",
    "Engine",
    "EngineError",
    "Infill",
    "Message",
    "Piece",
    "collect",
]
