"""The `quantize` of `POST /api/create` (`ollama create -q`): Ollama's names, and MLX quantization done by mlx-lm.

Ollama has two vocabularies, and both are accepted here (case-insensitive):
- its GGUF engine's (`ggml.ParseFileType`): F32, F16, BF16, Q8_0, Q4_K_S, Q4_K_M (alias Q4_K);
- its MLX engine's (`x/quant.Canonical`): int4, int8, mxfp4, nvfp4, mxfp8, and the aliases q4/fp4 (int4),
  q8/fp8 (int8).
A GGUF source takes only the GGUF names, which it hands to the GGUF converter (Ollama refuses the MLX names
for a GGUF with ParseFileType's text too). An MLX source is quantized by mlx-lm at the name's width:
the 4-bit names become mlx-lm's affine 4-bit (group 64, what Ollama's int4 is), the 8-bit ones affine 8-bit,
mxfp4/nvfp4/mxfp8 MLX's own modes, and F32/F16/BF16 cast the weights. As in Ollama, only a model whose
weights are not quantized yet can be quantized (`quantization is only supported for F16, BF16 and F32 models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.gguf.file_types import FILE_TYPES, LISTED, unsupported
from shim.errors import Kind, ShimError

_ALIASES = {"Q4": "int4", "FP4": "int4", "INT4": "int4", "Q8": "int8", "FP8": "int8", "INT8": "int8"}
_MLX_NAMES = ("int4", "int8", "mxfp4", "nvfp4", "mxfp8")
# What each name means for an MLX model: (mode, bits, group size) for quantization, or a dtype for a cast.
_MLX_QUANTIZATION: dict[str, tuple[str, int, int]] = {
    "Q4_K_M": ("affine", 4, 64),
    "Q4_K_S": ("affine", 4, 64),
    "int4": ("affine", 4, 64),
    "Q8_0": ("affine", 8, 64),
    "int8": ("affine", 8, 64),
    "mxfp4": ("mxfp4", 4, 32),
    "nvfp4": ("nvfp4", 4, 16),
    "mxfp8": ("mxfp8", 8, 32),
}
_CASTS = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# How ModelDirInfo reports an unquantized model's dtype, by Ollama's name for it.
_DTYPE_NAMES = {"F16": "F16", "FLOAT16": "F16", "BF16": "BF16", "BFLOAT16": "BF16", "F32": "F32", "FLOAT32": "F32"}


def unquantized_level(level: str) -> str | None:
    """F16, BF16 or F32 for a model that can be quantized (None for one already quantized, e.g. Q4)."""
    return _DTYPE_NAMES.get(level.upper())


class QuantizeError(ShimError):
    """A name Ollama would not accept, or a model that cannot be quantized (the create answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Kind.BAD_INPUT)


@dataclass(frozen=True)
class Quantization:
    """One accepted `quantize` value, by its canonical name (Q4_K_M, int4, F16, ...)."""

    name: str

    @classmethod
    def parse(cls, requested: str) -> Quantization:
        """Ollama upper-cases the value before it looks it up, and its error names what it accepts."""
        upper = requested.strip().upper()
        mlx_name = next((n for n in _MLX_NAMES if n.upper() == upper), None)
        name = FILE_TYPES.get(upper) or _ALIASES.get(upper) or mlx_name
        if name is None:
            raise QuantizeError(unsupported(upper, ", ".join([LISTED, *_MLX_NAMES])))
        return cls(name)

    @property
    def is_gguf_type(self) -> bool:
        """One of the GGUF engine's names, the only ones a GGUF source takes (as in Ollama)."""
        return self.name in FILE_TYPES

    def gguf_refusal(self) -> str:
        """Ollama's ParseFileType text for an MLX-engine name asked of a GGUF."""
        return unsupported(self.name.upper())

    @property
    def is_cast(self) -> bool:
        return self.name in _CASTS

    def describe(self, source_level: str) -> str:
        """Ollama's status while it quantizes: `quantizing F16 model to Q4_K_M`."""
        return f"quantizing {source_level} model to {self.name}"


def quantize_mlx_model(source: Path, target: Path, quantization: Quantization) -> None:
    """Write to `target` (which must not exist) `source`'s model quantized (or cast) by mlx-lm, with its
    tokenizer and config: what `mlx_lm.convert -q` writes, without its progress prints (this runs in the server)."""
    import mlx.core as mx
    from mlx.utils import tree_map

    from shim.engine.mlx_lm_api import load_with_config, quantize_model, save

    model, tokenizer, config = load_with_config(str(source), lazy=True)
    if config.get("quantization") or config.get("quantization_config"):
        raise QuantizeError("quantization is only supported for F16, BF16 and F32 models")
    if quantization.is_cast:
        dtype = getattr(mx, _CASTS[quantization.name])
        cast = tree_map(lambda v: v.astype(dtype) if mx.issubdtype(v.dtype, mx.floating) else v, model.parameters())
        model.update(cast)
        config["torch_dtype"] = _CASTS[quantization.name]
    else:
        mode, bits, group_size = _MLX_QUANTIZATION[quantization.name]
        try:
            model, config = quantize_model(model, config, group_size, bits, mode=mode)
        except (ValueError, RuntimeError) as e:  # a mode this build of MLX cannot do, or a shape it cannot take
            raise QuantizeError(f"cannot quantize this model to {quantization.name}: {e}") from None
    save(target, source, model, tokenizer, config)
