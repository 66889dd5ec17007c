"""The conversion decided before any weight is read: for every GGUF tensor, its output name(s), encoding, shapes
and dtypes, and any row permutation. Because every output's shape and dtype is known here, the safetensors
header can be written first and the weights streamed after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry.gguf.architectures import ROPE_TENSORS, SKIPPED_PREFIXES, Architecture, unpermute_order
from registry.gguf.codec import Encoding, encode, to_float32
from registry.gguf.errors import GGUFError
from registry.gguf.metadata import Hyperparameters
from registry.gguf.quantize_option import QuantizeRequest, is_quantizable, requested_bits
from registry.gguf.reader import GGUFFile, TensorInfo
from registry.gguf.tensor_types import GROUP_SIZE, ITEM_SIZES, packed_cols, rule_for

_CHUNK_ELEMENTS = 1 << 20  # rows are converted in chunks of about this many values (4 MB of float32)


@dataclass(frozen=True)
class OutputSpec:
    name: str
    dtype: str  # safetensors dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * ITEM_SIZES[self.dtype]

    @property
    def row_bytes(self) -> int:
        return self.nbytes // self.shape[0] if len(self.shape) > 1 else self.nbytes


@dataclass(frozen=True)
class TensorJob:
    source: TensorInfo
    target: str  # the output tensor name of a float output; "<module>.weight" of a quantized one
    encoding: Encoding
    order: np.ndarray | None  # source row of each output row (llama.cpp's rope permutation undone)
    outputs: tuple[OutputSpec, ...]

    @property
    def module(self) -> str:
        return self.target.removesuffix(".weight")

    def chunks(self, gguf: GGUFFile) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(first output row, {output name: rows}) for consecutive row ranges of the tensor."""
        what = f"tensor '{self.source.name}'"
        if len(self.source.shape) == 1:
            arrays = encode(gguf.rows(self.source.name), self.source.ggml_type, self.encoding, what)
            values = arrays[""].reshape(-1)
            yield 0, {self.target: values[self.order] if self.order is not None else values}
            return
        rows = self.source.rows
        step = max(1, _CHUNK_ELEMENTS // max(1, self.source.cols))
        for start in range(0, rows, step):
            raw = gguf.rows(self.source.name, start, min(rows, start + step), self.order)
            arrays = encode(raw, self.source.ggml_type, self.encoding, what)
            yield start, {self._name(suffix): array for suffix, array in arrays.items()}

    def _name(self, suffix: str) -> str:
        return self.target if not suffix else f"{self.module}.{suffix}"


@dataclass
class Plan:
    jobs: list[TensorJob]
    skipped: list[str]
    rope: dict[str, np.ndarray]  # rope_freqs / rope_factors_*: read into config, not written
    tensor_types: dict[str, int]  # GGUF type -> count, over the tensors the model keeps

    @property
    def parameter_count(self) -> int:
        return sum(job.source.n_elements for job in self.jobs)

    def quantization_config(self) -> dict[str, Any] | None:
        """mlx-lm's `quantization`: the most common (bits, mode) as the default, every other module by path."""
        quantized = {
            job.module: (job.encoding.bits, _mode(job.encoding)) for job in self.jobs if job.encoding.quantized
        }
        if not quantized:
            return None
        (bits, mode), _ = Counter(quantized.values()).most_common(1)[0]
        config: dict[str, Any] = {"group_size": GROUP_SIZE, "bits": bits, "mode": mode}
        for module, (layer_bits, layer_mode) in quantized.items():
            if (layer_bits, layer_mode) != (bits, mode):
                config[module] = {"group_size": GROUP_SIZE, "bits": layer_bits, "mode": layer_mode}
        return config


def _mode(encoding: Encoding) -> str:
    return "mxfp4" if encoding.kind == "mxfp4" else "affine"


def choose_encoding(
    info: TensorInfo, arch: Architecture, request: QuantizeRequest | None, layers: int, has_output: bool
) -> Encoding:
    rule = rule_for(info.ggml_type, info.name)
    offset = arch.offset_for(info.name)
    if request is not None and is_quantizable(info):
        if request.float_dtype:
            return Encoding("float", request.float_dtype)
        bits = requested_bits(request, info, layers, has_output)
        if bits:
            return Encoding("quantize", rule.dtype, bits)
    if rule.kind == "float":
        return Encoding("float", rule.dtype, offset=offset)
    matrix = len(info.shape) == 2 and info.name.endswith(".weight") and info.cols % GROUP_SIZE == 0
    if not matrix or offset:  # a quantized vector (never written by llama.cpp) or norm: plain float32
        return Encoding("float", "F32", offset=offset)
    if rule.kind == "exact":
        return Encoding("exact", rule.scale_dtype, rule.bits)
    if rule.kind == "mxfp4":
        return Encoding("mxfp4", "U8", 4)
    return Encoding("quantize", "F32", rule.bits)


def _outputs(target: str, info: TensorInfo, encoding: Encoding) -> tuple[OutputSpec, ...]:
    if not encoding.quantized:
        return (OutputSpec(target, encoding.dtype, info.shape),)
    rows, cols = info.shape
    module = target.removesuffix(".weight")
    weight = OutputSpec(target, "U32", (rows, packed_cols(cols, encoding.bits)))
    scales = OutputSpec(f"{module}.scales", encoding.dtype, (rows, cols // GROUP_SIZE))
    if encoding.kind == "mxfp4":
        return weight, scales
    return weight, scales, OutputSpec(f"{module}.biases", encoding.dtype, (rows, cols // GROUP_SIZE))


def _order(arch: Architecture, info: TensorInfo, hp: Hyperparameters) -> np.ndarray | None:
    if not arch.permuted_qk:
        return None
    stem = info.name.rsplit(".", 1)[0]
    heads = hp.int("attention.head_count")
    if stem.endswith(".attn_q"):
        return np.array(unpermute_order(info.shape[0], heads))
    if stem.endswith(".attn_k"):
        return np.array(unpermute_order(info.shape[0], hp.int("attention.head_count_kv", heads)))
    return None


def plan_conversion(gguf: GGUFFile, arch: Architecture, request: QuantizeRequest | None) -> Plan:
    hp = Hyperparameters(gguf.metadata, gguf.architecture)
    layers = hp.int("block_count")
    has_output = "output.weight" in gguf.tensors
    jobs: list[TensorJob] = []
    skipped: list[str] = []
    rope: dict[str, np.ndarray] = {}
    kept: Counter[str] = Counter()
    for name, info in gguf.tensors.items():
        if name.startswith(SKIPPED_PREFIXES):
            skipped.append(name)
            continue
        kept[info.ggml_type] += 1
        if name in ROPE_TENSORS:
            rule_for(info.ggml_type, name)  # refuses a type it cannot read
            rope[name] = to_float32(gguf.rows(name), info.ggml_type).reshape(-1)
            continue
        if len(info.shape) > 2:
            raise GGUFError(f"tensor '{name}' has {len(info.shape)} dimensions; only matrices and vectors convert")
        target = arch.target(name)
        encoding = choose_encoding(info, arch, request, layers, has_output)
        jobs.append(TensorJob(info, target, encoding, _order(arch, info, hp), _outputs(target, info, encoding)))
    return Plan(jobs=jobs, skipped=skipped, rope=rope, tensor_types=dict(kept))
