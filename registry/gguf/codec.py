"""Turning rows of a GGUF tensor into MLX arrays: repacking the block types MLX holds exactly, requantizing the
others, and casting floats.

GGUF blocks never cross rows and MLX groups of 32 never cross rows either, so any range of whole rows converts on
its own: the writer feeds row chunks and keeps memory near one chunk.

MLX packs quantized codes as a little-endian bit stream per row (element 0 in the lowest bits of the first uint32,
a 3/5/6-bit code may straddle two words); GGUF's layouts differ per type (Q4_0 keeps element j in the low nibble
and element j+16 in the high nibble of byte j, Q4_K interleaves 32-element sub-blocks in 64-element chunks, Q5_*
keep the fifth bit in a separate bit mask), so every exact type first unpacks to one code per element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import mlx.core as mx
import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants

from registry.gguf.errors import GGUFError
from registry.gguf.tensor_types import GROUP_SIZE

EncodingKind = Literal["float", "exact", "mxfp4", "quantize"]


@dataclass(frozen=True)
class Encoding:
    """What one GGUF tensor is written as. `dtype` is the float dtype of a float output, or the dtype of scales and
    biases of a quantized one; `offset` is added to float values (-1 undoes the +1 llama.cpp stores Gemma norms as)."""

    kind: EncodingKind
    dtype: str
    bits: int = 0
    offset: float = 0.0

    @property
    def quantized(self) -> bool:
        return self.kind != "float"


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """(rows, cols) codes below 2**bits -> (rows, cols*bits/32) uint32 in MLX's layout: every 32 codes fill `bits`
    words as one little-endian bit stream."""
    rows, cols = codes.shape
    chunks = codes.reshape(rows, cols // 32, 32).astype(np.uint32)
    words = np.zeros((rows, cols // 32, bits), dtype=np.uint32)
    for i in range(32):
        word, shift = divmod(i * bits, 32)
        words[..., word] |= chunks[..., i] << np.uint32(shift)  # uint32 drops the bits that spill over
        if shift + bits > 32:
            words[..., word + 1] |= chunks[..., i] >> np.uint32(32 - shift)
    return words.reshape(rows, cols * bits // 32)


def _f16(column: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(column).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """Bytes (n, 16) -> codes (n, 32): the low nibbles are elements 0-15, the high nibbles elements 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _fifth_bits(qh: np.ndarray) -> np.ndarray:
    """Q5_0/Q5_1's 4-byte mask (n, 4) -> (n, 32) fifth bits: bit j of the little-endian uint32 is element j's."""
    mask = np.ascontiguousarray(qh).view("<u4")
    return ((mask >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)


def _k_codes(qs: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K low nibbles (n, 128) -> (n, 256): each 32-byte chunk c holds sub-block 2c in its low nibbles and
    sub-block 2c+1 in its high nibbles."""
    chunks = qs.reshape(-1, 4, 1, 32)
    return np.concatenate([chunks & 0x0F, chunks >> 4], axis=2).reshape(-1, 256)


def _decode_exact(blocks: np.ndarray, ggml_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks (n, type_size) -> codes (n, block), per-32 scales and biases (n, block/32) in float32, such that
    codes*scale + bias is exactly what ggml computes for the block."""
    if ggml_type == "Q8_0":
        d = _f16(blocks[:, 0:2])
        codes = (blocks[:, 2:34].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        return codes, d, -128.0 * d
    if ggml_type == "Q4_0":
        d = _f16(blocks[:, 0:2])
        return _nibbles(blocks[:, 2:18]), d, -8.0 * d
    if ggml_type == "Q4_1":
        return _nibbles(blocks[:, 4:20]), _f16(blocks[:, 0:2]), _f16(blocks[:, 2:4])
    if ggml_type == "Q5_0":
        d = _f16(blocks[:, 0:2])
        return _nibbles(blocks[:, 6:22]) | (_fifth_bits(blocks[:, 2:6]) << 4), d, -16.0 * d
    if ggml_type == "Q5_1":
        codes = _nibbles(blocks[:, 8:24]) | (_fifth_bits(blocks[:, 4:8]) << 4)
        return codes, _f16(blocks[:, 0:2]), _f16(blocks[:, 2:4])
    if ggml_type in ("Q4_K", "Q5_K"):
        d, dmin = _f16(blocks[:, 0:2]), _f16(blocks[:, 2:4])
        sub_scales, sub_mins = gguf_quants.Q4_K.get_scale_min(np.ascontiguousarray(blocks[:, 4:16]))
        scales = d * sub_scales.astype(np.float32)
        biases = -(dmin * sub_mins.astype(np.float32))
        if ggml_type == "Q4_K":
            return _k_codes(blocks[:, 16:144]), scales, biases
        high = (blocks[:, 16:48][:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1
        return _k_codes(blocks[:, 48:176]) | (high.reshape(-1, 256) << 4), scales, biases
    if ggml_type in _TERNARY_SCALE:
        return _ternary(blocks, ggml_type)
    raise AssertionError(f"{ggml_type} has no exact repacking")


_TERNARY_SCALE = {"TQ1_0": 52, "TQ2_0": 64}  # byte offset of the block's float16 scale


def _ternary(blocks: np.ndarray, ggml_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TQ1_0/TQ2_0 hold d·(q-1) per 256 values, q in 0..2 (TQ2_0's 2-bit field can also hold 3): affine with scale
    d and bias -d. Their base-3 packing is left to gguf's dequantizer; the codes come back as values/d + 1."""
    offset = _TERNARY_SCALE[ggml_type]
    d = _f16(blocks[:, offset : offset + 2])
    values = gguf_quants.dequantize(blocks, GGMLQuantizationType[ggml_type])
    safe = np.where(d == 0, 1.0, d)
    codes = np.where(d == 0, 1, np.rint(values / safe) + 1).astype(np.uint8)
    groups = values.shape[1] // GROUP_SIZE
    return codes, np.repeat(d, groups, axis=1), np.repeat(-d, groups, axis=1)


def _blocks(raw: np.ndarray, ggml_type: str) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[GGMLQuantizationType[ggml_type]]
    return np.ascontiguousarray(raw).reshape(-1, type_size)


def _half(values: np.ndarray, what: str) -> np.ndarray:
    half = values.astype(np.float16)
    if not np.isfinite(half[np.isfinite(values)]).all():
        raise GGUFError(f"{what}: a quantization bias overflows float16 (weights beyond ±65,000 cannot be repacked)")
    return half


def repack_exact(raw: np.ndarray, ggml_type: str, bits: int, scale_dtype: str, what: str) -> dict[str, np.ndarray]:
    """Rows of an exactly representable type -> MLX affine weight, scales, biases (no value changes)."""
    rows = raw.shape[0]
    codes, scales, biases = _decode_exact(_blocks(raw, ggml_type), ggml_type)
    codes = codes.reshape(rows, -1)
    scales, biases = scales.reshape(rows, -1), biases.reshape(rows, -1)
    if scale_dtype == "F16":
        scales, biases = _half(scales, what), _half(biases, what)
    return {"weight": pack_codes(codes, bits), "scales": scales, "biases": biases}


def repack_mxfp4(raw: np.ndarray) -> dict[str, np.ndarray]:
    """MXFP4 rows -> MLX "mxfp4" weight and E8M0 scales: the same codes and the same scale bytes, re-laid out."""
    rows = raw.shape[0]
    blocks = _blocks(raw, "MXFP4")
    codes = _nibbles(blocks[:, 1:17]).reshape(rows, -1)
    return {"weight": pack_codes(codes, 4), "scales": np.ascontiguousarray(blocks[:, 0]).reshape(rows, -1)}


def to_float32(raw: np.ndarray, ggml_type: str) -> np.ndarray:
    """Any supported type's rows -> float32 values (rows, cols), as ggml computes them."""
    if ggml_type in ("F32", "F16", "F64"):
        return raw.astype(np.float32)
    return gguf_quants.dequantize(raw, GGMLQuantizationType[ggml_type])


def _mx_dtype(dtype: str) -> mx.Dtype:
    return {"F32": mx.float32, "F16": mx.float16, "BF16": mx.bfloat16}[dtype]


def to_numpy(array: mx.array) -> np.ndarray:
    """An MLX array as numpy; bfloat16, which numpy lacks, comes back as its uint16 bits."""
    if array.dtype == mx.bfloat16:
        array = array.view(mx.uint16)
    return np.array(array)


def _as_mx(raw: np.ndarray, ggml_type: str) -> mx.array:
    """Float rows as an MLX array in their own dtype (BF16 from its bits), anything else as float32."""
    if ggml_type == "BF16":
        return mx.array(np.ascontiguousarray(raw).view(np.uint16)).view(mx.bfloat16)
    if ggml_type in ("F32", "F16"):
        return mx.array(raw)
    return mx.array(to_float32(raw, ggml_type))


def encode(raw: np.ndarray, ggml_type: str, encoding: Encoding, what: str) -> dict[str, np.ndarray]:
    """Rows of one tensor -> the arrays written for them: {"": values} for a float output, {"weight", "scales",
    "biases"} (no biases for mxfp4) for a quantized one. `what` names the tensor in errors."""
    if encoding.kind == "exact":
        return repack_exact(raw, ggml_type, encoding.bits, encoding.dtype, what)
    if encoding.kind == "mxfp4":
        return repack_mxfp4(raw)
    values = _as_mx(raw, ggml_type)
    if encoding.offset:
        values = (values.astype(mx.float32) + encoding.offset).astype(values.dtype)
    if encoding.kind == "float":
        return {"": to_numpy(values.astype(_mx_dtype(encoding.dtype)))}
    return affine_quantize(np.array(values.astype(mx.float32)), encoding.bits, encoding.dtype)


def _stored(values: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(the array as written in `dtype`, its float32 value) — codes are computed against what is stored."""
    stored = mx.array(values).astype(_mx_dtype(dtype))
    return to_numpy(stored), np.array(stored.astype(mx.float32))


def affine_quantize(values: np.ndarray, bits: int, dtype: str) -> dict[str, np.ndarray]:
    """MLX affine quantization (group 32) with the group's min as bias and (max-min)/(2^bits-1) as scale, rounding
    to the nearest level: every value lands within half a step. `mx.quantize` instead shifts the grid so that zero
    is a level, which can leave the group's extreme a whole step away (measured: 1.5x the worst error, slightly
    more RMS error at 3-8 bits), so requantization uses this plain form."""
    rows, cols = values.shape
    groups = values.reshape(rows, cols // GROUP_SIZE, GROUP_SIZE)
    low, high = groups.min(axis=-1), groups.max(axis=-1)
    scales, scale_values = _stored((high - low) / (2**bits - 1), dtype)
    biases, bias_values = _stored(low, dtype)
    steps = np.where(scale_values == 0, 1.0, scale_values)[..., None]
    codes = np.clip(np.rint((groups - bias_values[..., None]) / steps), 0, 2**bits - 1).astype(np.uint8)
    return {"weight": pack_codes(codes.reshape(rows, cols), bits), "scales": scales, "biases": biases}
