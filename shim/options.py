"""Generation options with Ollama's defaults, precedence and type errors.

Precedence is built-in defaults < Modelfile PARAMETERs < request `options`. Unknown names and nulls are
ignored (Ollama logs them); a wrong type is an error whose text names the Go type, and Ollama reports it
as HTTP 500 because it surfaces while scheduling the runner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from typing import Any

from registry.parameters import OPTION_TYPES

log = logging.getLogger("mlx_shim")

# Runner options that configure llama.cpp's memory and threads; MLX manages those itself.
IGNORED_ON_MLX = {"num_batch", "num_gpu", "main_gpu", "num_thread", "use_mmap", "typical_p"}


class OptionError(ValueError):
    pass


@dataclass(frozen=True)
class GenerationOptions:
    num_ctx: int = 4096
    num_keep: int = 4
    seed: int = -1
    num_predict: int = -1
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    repeat_last_n: int = 64
    temperature: float = 0.8
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: tuple[str, ...] = ()


_KNOWN = {f.name for f in fields(GenerationOptions)}


def resolve_options(
    num_ctx_default: int,
    model_parameters: dict[str, Any],
    request_options: dict[str, Any] | None,
    trained_context: int = 0,
) -> GenerationOptions:
    """The model's parameters under the request's options, checked as Ollama checks them. num_ctx is capped at
    the context the model was trained for (`trained_context`; 0: the model does not say), as Ollama caps it:
    the one place that rule is applied, so the engine, embeddings, rendering and /api/ps all read it capped."""
    opts = GenerationOptions(num_ctx=num_ctx_default)
    for source in (model_parameters, request_options or {}):
        updates = {}
        for key, value in source.items():
            if value is None:
                continue
            kind = OPTION_TYPES.get(key)
            if kind is None:
                log.warning("invalid option provided: %s", key)
                continue
            checked = _check(key, kind, value)
            if key in _KNOWN:
                updates[key] = checked
            elif key in IGNORED_ON_MLX:
                log.info("option %s has no effect on MLX", key)
        opts = replace(opts, **updates)
    num_ctx = max(opts.num_ctx, 4)
    return replace(opts, num_ctx=min(num_ctx, trained_context) if trained_context else num_ctx)


def _go_int64(number: float) -> int:
    """Go's int64(float64(n)) on amd64, as Ollama sets an integer option: JSON numbers arrive as float64, and
    one outside int64 (a `seed` of 2**64) becomes math.MinInt64, a negative value (no seed, no limit)."""
    try:
        value = float(number)
    except OverflowError:
        return -(2**63)
    return int(value) if -(2.0**63) <= value < 2.0**63 else -(2**63)


def _check(key: str, kind: str, value: Any) -> Any:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        if not is_number:
            raise OptionError(f'option "{key}" must be of type integer')
        return _go_int64(value)
    if kind == "float32":
        if not is_number:
            raise OptionError(f'option "{key}" must be of type float32')
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise OptionError(f'option "{key}" must be of type boolean')
        return value
    if not isinstance(value, list):
        raise OptionError(f'option "{key}" must be of type array')
    if not all(isinstance(v, str) for v in value):
        raise OptionError(f'option "{key}" must be of an array of strings')
    return tuple(value)
