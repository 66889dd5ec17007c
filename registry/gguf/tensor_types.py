"""What each GGML tensor type becomes in MLX, decided once here so the planner, the codec and the tests agree.

Float types stay float in their own dtype. A quantized type becomes MLX quantization at the width of its class
(Q2_K -> 2 bits ... Q8_0 -> 8 bits), group size 32:

- exact: MLX's affine form `w = scale * q + bias` over groups of 32 holds the block as it is, so the codes are
  repacked and `mx.dequantize` gives back bit for bit what `gguf.quants.dequantize` gives. Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
  keep their float16 scale (the bias is the float16 min, or -2^(bits-1)·scale: a power-of-two multiple, exact in
  float16 unless it overflows, which only weights beyond ±65,000 would do). Q4_K/Q5_K scales are a float16 super-
  scale times a 6-bit sub-scale, which float16 cannot hold, so they are float32. The ternary TQ1_0/TQ2_0
  (d·{-1, 0, 1}) are 2-bit codes with scale d and bias -d, float16.
- mxfp4: MXFP4 is exactly MLX's own "mxfp4" mode (E2M1 codes, E8M0 scale per 32), repacked without loss.
- requantize: types whose sub-blocks are 16 wide (Q2_K, Q3_K, Q6_K: MLX groups are at least 32) or whose levels
  are not evenly spaced (IQ*, NVFP4) are dequantized with the gguf package and quantized again, min/max affine
  per group of 32 at the class width (codec.affine_quantize; IQ1 gets 2 bits, MLX's smallest useful width),
  float32 scales. The error this costs is measured in tests/test_gguf_types.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from registry.gguf.errors import GGUFError

GROUP_SIZE = 32

Kind = Literal["float", "exact", "mxfp4", "requantize"]


@dataclass(frozen=True)
class TypeRule:
    kind: Kind
    bits: int = 0  # MLX bits for the quantized kinds
    dtype: str = ""  # safetensors dtype for float kinds ("F32", "F16", "BF16")
    scale_dtype: str = ""  # safetensors dtype of scales and biases for the quantized kinds


_F16_SCALES = "F16"
_F32_SCALES = "F32"

RULES: dict[str, TypeRule] = {
    "F32": TypeRule("float", dtype="F32"),
    "F16": TypeRule("float", dtype="F16"),
    "BF16": TypeRule("float", dtype="BF16"),
    "F64": TypeRule("float", dtype="F32"),  # no model ships F64 weights; float32 holds what they mean
    "Q4_0": TypeRule("exact", 4, scale_dtype=_F16_SCALES),
    "Q4_1": TypeRule("exact", 4, scale_dtype=_F16_SCALES),
    "Q5_0": TypeRule("exact", 5, scale_dtype=_F16_SCALES),
    "Q5_1": TypeRule("exact", 5, scale_dtype=_F16_SCALES),
    "Q8_0": TypeRule("exact", 8, scale_dtype=_F16_SCALES),
    "Q4_K": TypeRule("exact", 4, scale_dtype=_F32_SCALES),
    "Q5_K": TypeRule("exact", 5, scale_dtype=_F32_SCALES),
    "MXFP4": TypeRule("mxfp4", 4, scale_dtype="U8"),
    "Q2_K": TypeRule("requantize", 2, scale_dtype=_F32_SCALES),
    "Q3_K": TypeRule("requantize", 3, scale_dtype=_F32_SCALES),
    "Q6_K": TypeRule("requantize", 6, scale_dtype=_F32_SCALES),
    "IQ4_NL": TypeRule("requantize", 4, scale_dtype=_F32_SCALES),
    "IQ4_XS": TypeRule("requantize", 4, scale_dtype=_F32_SCALES),
    "IQ3_XXS": TypeRule("requantize", 3, scale_dtype=_F32_SCALES),
    "IQ3_S": TypeRule("requantize", 3, scale_dtype=_F32_SCALES),
    "IQ2_XXS": TypeRule("requantize", 2, scale_dtype=_F32_SCALES),
    "IQ2_XS": TypeRule("requantize", 2, scale_dtype=_F32_SCALES),
    "IQ2_S": TypeRule("requantize", 2, scale_dtype=_F32_SCALES),
    "IQ1_S": TypeRule("requantize", 2, scale_dtype=_F32_SCALES),
    "IQ1_M": TypeRule("requantize", 2, scale_dtype=_F32_SCALES),
    "TQ1_0": TypeRule("exact", 2, scale_dtype=_F16_SCALES),
    "TQ2_0": TypeRule("exact", 2, scale_dtype=_F16_SCALES),
    "NVFP4": TypeRule("requantize", 4, scale_dtype=_F32_SCALES),
}

# Safetensors dtype -> bytes per element.
ITEM_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "U32": 4, "U8": 1}


def rule_for(ggml_type: str, tensor_name: str) -> TypeRule:
    rule = RULES.get(ggml_type)
    if rule is None:
        raise GGUFError(f"unsupported GGUF tensor type {ggml_type} (tensor '{tensor_name}')")
    return rule


def packed_cols(cols: int, bits: int) -> int:
    """uint32 words per row that MLX packs `cols` values of `bits` bits into."""
    return cols * bits // 32
