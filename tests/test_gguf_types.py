"""Every GGML tensor type against ggml's own numbers (`gguf.quants.dequantize`).

Exact types repack bit for bit: `mx.dequantize` of the written triple (float32) equals the reference on random
valid blocks (every code value, random scales) and on blocks the gguf package quantized from real-looking data.
Requantized types are bounded: each value is within half a step of its MLX group, and the relative RMS error stays
under the figures recorded in REQUANTIZED (measured on random blocks, a worst case: their 16-value sub-scales are
unrelated, while real weights give neighbouring sub-blocks similar scales; see the Q6_K test on such data).
Then a tiny llama GGUF of each type converts to a model whose logits match the source's within 1e-4 (relative to
the largest logit; both run in float32) with identical greedy tokens, for every float and exact type; for Q6_K
(real-looking blocks) the logit error the requantization adds stays within 1.5x what Q6_K itself costs.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants
from mlx_lm.utils import load_model

from registry.gguf import convert_gguf
from registry.gguf.architectures import architecture
from registry.gguf.codec import encode
from registry.gguf.plan import choose_encoding
from registry.gguf.reader import TensorInfo
from tests.gguf_tiny import CONFIGS, WRITABLE, encode_q6_k, make_model, random_blocks, tiny_decoder

EXACT = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "MXFP4", "TQ1_0", "TQ2_0")
# Relative RMS error of the requantization on random blocks, measured: Q2_K 0.19, Q3_K 0.11, Q6_K 0.016, IQ4_NL
# 0.068, IQ4_XS 0.068, IQ3_XXS 0.15, IQ3_S 0.15, IQ2_XXS 0.31, IQ2_XS 0.38, IQ2_S 0.39, IQ1_S 0.27, IQ1_M 0.34,
# NVFP4 0.080; the bounds leave ~20% headroom.
REQUANTIZED = {"Q2_K": 0.23, "Q3_K": 0.13, "Q6_K": 0.02, "IQ4_NL": 0.082, "IQ4_XS": 0.082, "IQ3_XXS": 0.18,
               "IQ3_S": 0.18, "IQ2_XXS": 0.37, "IQ2_XS": 0.45, "IQ2_S": 0.46, "IQ1_S": 0.32, "IQ1_M": 0.41,
               "NVFP4": 0.096}  # fmt: skip
K_CONFIG = {**CONFIGS["llama"], "hidden_size": 256, "intermediate_size": 512}  # K-quant rows are 256-wide
PROMPTS = [[5, 17, 42, 99, 3, 250, 7, 8, 120, 64], [1, 2, 3]]


def converted_rows(raw: np.ndarray, qtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Our conversion of one (rows, bytes) tensor, dequantized by MLX in float32, with its per-group scales."""
    rows, cols = raw.shape[0], gguf_quants.dequantize(raw[:1], GGMLQuantizationType[qtype]).shape[1]
    info = TensorInfo("blk.0.ffn_up.weight", qtype, (rows, cols), rows * cols, raw.nbytes)
    encoding = choose_encoding(info, architecture("llama"), None, 2, True)
    out = encode(raw, qtype, encoding, "test")
    weight = mx.array(out["weight"])
    if encoding.kind == "mxfp4":
        scales = mx.array(out["scales"])
        values = mx.dequantize(weight, scales, group_size=32, bits=4, mode="mxfp4", dtype=mx.float32)
        return np.array(values), np.array(scales)
    scales, biases = (mx.array(out[k]).astype(mx.float32) for k in ("scales", "biases"))
    return np.array(mx.dequantize(weight, scales, biases, group_size=32, bits=encoding.bits)), np.array(scales)


@pytest.mark.parametrize("qtype", EXACT)
def test_exact_types_repack_bit_for_bit(qtype: str) -> None:
    rng = np.random.default_rng(7)
    samples = [random_blocks(qtype, 16, 512, rng)]
    if qtype in WRITABLE:
        samples.append(gguf_quants.quantize(rng.normal(size=(16, 512)).astype(np.float32), GGMLQuantizationType[qtype]))
    for raw in samples:
        reference = gguf_quants.dequantize(raw, GGMLQuantizationType[qtype])
        np.testing.assert_array_equal(converted_rows(raw, qtype)[0], reference)


@pytest.mark.parametrize("qtype", list(REQUANTIZED))
def test_requantized_types_stay_within_half_a_step(qtype: str) -> None:
    raw = random_blocks(qtype, 32, 512, np.random.default_rng(11))
    reference = gguf_quants.dequantize(raw, GGMLQuantizationType[qtype])
    ours, steps = converted_rows(raw, qtype)
    error = np.abs(ours - reference).reshape(32, -1, 32)
    assert (error <= np.abs(steps)[..., None] * 0.5 * (1 + 1e-5) + 1e-9).all()  # round to nearest on MLX's grid
    relative = float(np.sqrt(((ours - reference) ** 2).mean() / (reference**2).mean()))
    print(f"{qtype}: relative RMS error {relative:.4f}")
    assert relative <= REQUANTIZED[qtype]


def test_q6_k_on_real_looking_weights_costs_one_more_6_bit_rounding() -> None:
    """Q6_K blocks of Gaussian weights: requantizing to MLX 6-bit adds about what quantizing the original to MLX
    6-bit would cost (~1.9% RMS), not more."""
    weights = np.random.default_rng(3).normal(size=(128, 1024)).astype(np.float32) * 0.02
    raw = encode_q6_k(weights)
    reference = gguf_quants.dequantize(raw, GGMLQuantizationType.Q6_K)
    added = np.sqrt(((converted_rows(raw, "Q6_K")[0] - reference) ** 2).mean() / (reference**2).mean())
    direct = mx.quantize(mx.array(weights), group_size=32, bits=6)
    direct_error = np.sqrt(((np.array(mx.dequantize(*direct, group_size=32, bits=6)) - weights) ** 2).mean()
                           / (weights**2).mean())  # fmt: skip
    assert added <= 1.2 * direct_error, (added, direct_error)


@pytest.mark.parametrize("qtype", ["F32", "F16", "BF16", *EXACT, "Q6_K"])
def test_logits_match_per_type(qtype: str, tmp_path: Path) -> None:
    tiny = tiny_decoder("llama", qtype, tmp_path / "tiny.gguf", config=K_CONFIG)
    convert_gguf(tiny.path, tmp_path / "model")
    converted, _ = load_model(tmp_path / "model")
    converted.set_dtype(mx.float32)
    original = make_model(K_CONFIG, 0)  # the float weights the GGUF was quantized from
    source = make_model(K_CONFIG, 0)
    source.load_weights([(k, mx.array(v)) for k, v in tiny.reference.items()])  # the GGUF's values
    for prompt in PROMPTS:
        ours, theirs, floats = (np.array(m(mx.array([prompt]))) for m in (converted, source, original))
        error = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        print(f"{qtype}: max logit error {error:.2e} of the largest logit")
        if qtype == "Q6_K":  # requantized: it may cost about what Q6_K itself costs against the float weights
            assert rms(ours - theirs) <= 1.5 * rms(theirs - floats)
            continue
        assert error <= 1e-4
        assert greedy(converted, prompt) == greedy(source, prompt)


def rms(values: np.ndarray) -> float:
    return float(np.sqrt((values**2).mean()))


def greedy(model: nn.Module, prompt: list[int], steps: int = 5) -> list[int]:
    tokens = list(prompt)
    for _ in range(steps):
        tokens.append(int(mx.argmax(model(mx.array([tokens]))[0, -1]).item()))
    return tokens
