"""Typed access to a GGUF's `<arch>.*` hyperparameters, with errors that name the missing key."""

from __future__ import annotations

import builtins
from typing import Any, TypeVar, overload

from registry.gguf.errors import GGUFError

_MISSING = object()
_Default = TypeVar("_Default")


class Hyperparameters:
    """`hp.int("block_count")` reads `<arch>.block_count`. Per-layer arrays (some GGUFs store head counts per
    layer) are accepted when every layer agrees, since the supported mlx-lm models take one value."""

    def __init__(self, metadata: dict[str, Any], arch: str) -> None:
        self.metadata = metadata
        self.arch = arch

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        full = f"{self.arch}.{key}"
        if full in self.metadata:
            return self.metadata[full]
        if default is _MISSING:
            raise GGUFError(f"the GGUF lacks {full}, which a {self.arch} model needs")
        return default

    def has(self, key: str) -> bool:
        return f"{self.arch}.{key}" in self.metadata

    def _uniform(self, key: str, value: Any) -> Any:
        if isinstance(value, list):
            if not value or any(v != value[0] for v in value):
                raise GGUFError(f"{self.arch}.{key} differs between layers ({value[:8]}...), which is not supported")
            return value[0]
        return value

    # Each reader returns the default as given when the key is absent (None included), else the value converted.
    @overload
    def int(self, key: builtins.str) -> builtins.int: ...
    @overload
    def int(self, key: builtins.str, default: _Default) -> builtins.int | _Default: ...
    def int(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._uniform(key, self.raw(key, default))
        return value if value is None else builtins.int(value)

    @overload
    def float(self, key: builtins.str) -> builtins.float: ...
    @overload
    def float(self, key: builtins.str, default: _Default) -> builtins.float | _Default: ...
    def float(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._uniform(key, self.raw(key, default))
        return value if value is None else builtins.float(value)

    @overload
    def str(self, key: builtins.str) -> builtins.str: ...
    @overload
    def str(self, key: builtins.str, default: _Default) -> builtins.str | _Default: ...
    def str(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        return value if value is None else builtins.str(value)


def clean_float(value: float) -> float:
    """GGUF stores float32: 1e-5 reads back as 9.999999747e-06. Round to the float32's shortest decimal so
    config.json shows what the model's authors wrote."""
    import numpy as np

    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
