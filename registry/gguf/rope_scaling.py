"""mlx-lm's `rope_scaling` rebuilt from what a GGUF keeps of it.

llama.cpp's converter (and Ollama's) does not store Llama 3's rope_scaling parameters: it stores their result, a
`rope_freqs` tensor of per-frequency divisors. The parameters are recovered from the tensor (factor = its largest
value; low/high frequency factors from the ramp between) and accepted only if mlx-lm's own Llama3RoPE, built from
them, reproduces the tensor; otherwise the conversion refuses, since a wrong rope silently breaks long contexts.
Phi3's LongRoPE factors are stored as `rope_factors_long`/`rope_factors_short` and go into config as lists.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from registry.gguf.errors import GGUFError
from registry.gguf.metadata import Hyperparameters, clean_float

_LLAMA3_DEFAULTS = (1.0, 4.0)  # low_freq_factor, high_freq_factor of every Llama 3.x release
_TOLERANCE = 1e-4  # relative; rope_freqs is float32 and the two sides compute the ramp in different orders


def llama3_from_rope_freqs(divisors: np.ndarray, base: float, dims: int, original: int) -> dict[str, Any] | None:
    """Llama 3 rope_scaling whose frequencies equal `divisors` x the plain ones, or None when the tensor is all ones
    (no scaling). Raises GGUFError when no Llama 3 parameters reproduce the tensor."""
    divisors = np.asarray(divisors, dtype=np.float64).reshape(-1)
    if divisors.size != dims // 2:
        raise GGUFError(f"rope_freqs has {divisors.size} values, but rope has {dims // 2} frequencies")
    if np.allclose(divisors, 1.0, rtol=0, atol=1e-7):
        return None
    factor = float(divisors.max())
    for low, high in _candidates(divisors, base, dims, original, factor):
        scaling = {
            "rope_type": "llama3",
            "factor": clean_float(factor),
            "low_freq_factor": low,
            "high_freq_factor": high,
            "original_max_position_embeddings": original,
        }
        if _reproduces(scaling, divisors, base, dims):
            return scaling
    raise GGUFError(
        "cannot rebuild Llama 3 rope scaling from the GGUF's rope_freqs tensor "
        f"(factor {factor:g}, original context {original}); the converted model would mis-handle positions"
    )


def _candidates(
    divisors: np.ndarray, base: float, dims: int, original: int, factor: float
) -> list[tuple[float, float]]:
    """Llama 3's defaults first, then the ramp fitted from the tensor: between the two wavelength thresholds,
    smooth = (1/divisor - 1/factor) / (1 - 1/factor) is linear in original/wavelength with slope 1/(high-low)."""
    candidates = [_LLAMA3_DEFAULTS]
    wavelengths = 2 * math.pi * base ** (np.arange(0, dims, 2) / dims)
    ramp = (divisors > 1 + 1e-6) & (divisors < factor * (1 - 1e-6))
    if ramp.sum() >= 2 and factor > 1:
        smooth = (1 / divisors[ramp] - 1 / factor) / (1 - 1 / factor)
        slope, intercept = np.polyfit(original / wavelengths[ramp], smooth, 1)
        if slope > 0:
            low = -intercept / slope
            high = low + 1 / slope
            candidates += [(round(low, 4), round(high, 4)), (float(low), float(high))]
    return candidates


def _reproduces(scaling: dict[str, Any], divisors: np.ndarray, base: float, dims: int) -> bool:
    from shim.engine.mlx_lm_api import llama3_rope_frequencies

    plain = base ** (np.arange(0, dims, 2, dtype=np.float64) / dims)
    got = llama3_rope_frequencies(dims, base, scaling) / plain
    return bool(np.allclose(got, divisors, rtol=_TOLERANCE, atol=0))


def from_metadata(hp: Hyperparameters) -> dict[str, Any] | None:
    """`<arch>.rope.scaling.*` keys (linear and YaRN, which llama.cpp's converters write) as mlx-lm rope_scaling."""
    kind = hp.str("rope.scaling.type", "none") or "none"
    factor = hp.float("rope.scaling.factor", 0.0) or 0.0
    if kind == "none" or factor in (0.0, 1.0):
        return None
    if kind == "linear":
        return {"rope_type": "linear", "factor": clean_float(factor)}
    if kind == "yarn":
        scaling: dict[str, Any] = {"rope_type": "yarn", "factor": clean_float(factor)}
        if hp.has("rope.scaling.original_context_length"):
            scaling["original_max_position_embeddings"] = hp.int("rope.scaling.original_context_length")
        for ours, theirs in (("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow")):
            for key in (f"rope.scaling.{theirs}", f"rope.scaling.{ours}"):
                if hp.has(key):
                    scaling[ours] = clean_float(hp.float(key))
                    break
        return scaling
    raise GGUFError(f"unsupported rope scaling type '{kind}' in {hp.arch}.rope.scaling.type")


def longrope(long: np.ndarray | None, short: np.ndarray | None) -> dict[str, Any] | None:
    """Phi3's LongRoPE factors; None when the GGUF holds none (Ollama writes empty tensors then) or all ones."""
    if long is None or short is None or long.size == 0:
        return None
    if np.allclose(long, 1.0) and np.allclose(short, 1.0):
        return None
    return {
        "type": "longrope",
        "long_factor": [clean_float(v) for v in long.reshape(-1).tolist()],
        "short_factor": [clean_float(v) for v in short.reshape(-1).tolist()],
    }
