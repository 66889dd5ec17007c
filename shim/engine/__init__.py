"""The MLX engine: everything that touches MLX lives under this package."""

from shim.engine.engine import Engine
from shim.engine.jobs import collect
from shim.engine.types import (
    CompletionRequest,
    Done,
    EmbedRequest,
    EmbedResult,
    Infill,
    Message,
    Piece,
    ToolCall,
)

__all__ = [
    "CompletionRequest",
    "Done",
    "EmbedRequest",
    "EmbedResult",
    "Engine",
    "Infill",
    "Message",
    "Piece",
    "ToolCall",
    "collect",
]
