"""GGUF files (llama.cpp's format, what Ollama's library and most local model collections hold) turned into
MLX model directories that mlx-lm, or our encoder for embedding models, loads like any other.

Public API: `is_gguf(path)`, `convert_gguf(source, target, *, quantize=None, progress=None) -> GGUFConversion`,
`GGUFError`. They load lazily: importing `registry.gguf.errors` must not pull in MLX and the gguf package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry.gguf.errors import GGUFError

if TYPE_CHECKING:
    from registry.gguf.convert import GGUFConversion, convert_gguf
    from registry.gguf.reader import is_gguf

__all__ = ["GGUFConversion", "GGUFError", "convert_gguf", "is_gguf"]

_LAZY = {"GGUFConversion": "registry.gguf.convert", "convert_gguf": "registry.gguf.convert",
         "is_gguf": "registry.gguf.reader"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
