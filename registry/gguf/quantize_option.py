"""Ollama's `quantize` (create's `quantize`, the CLI's `-q`) for a GGUF source, with Ollama v0.24.0's rules.

Accepted names and refusals follow Ollama's source (fs/ggml/type.go ParseFileType; server/create.go createModel;
server/quantization.go newType / getTensorNewType), so a Modelfile behaves here as it does there:

- the name is upper-cased; F32, F16, BF16, Q8_0, Q4_K_S, Q4_K_M and Q4_K (= Q4_K_M) are accepted, anything else
  fails with Ollama's own text ("unsupported quantization type Q4_0 - supported types are ...");
- only F32/F16/BF16 GGUFs are quantized (a quantized one fails with Ollama's text), and asking for the file's own
  type changes nothing;
- what is quantized: 2-D weights, not norms, not BERT's position or token-type tables, not vision tensors;
- Q4_K_M / Q4_K_S keep Ollama's mix: the output matrix (the embedding when tied) at 6 bits; attn_v and ffn_down at
  6 bits on the layers llama.cpp's use_more_bits picks (Q4_K_M) or 5 bits on the first layers (Q4_K_S); phi3's
  fused attn_qkv at 5 bits (Q4_K_M). Widths are K-quant classes: Q4_K -> 4, Q5_K -> 5, Q6_K -> 6, Q8_0 -> 8.

Unlike GGUF, MLX's groups of 32 need no 256-wide rows, so Ollama's fallbacks for such rows (Q4_K -> Q5_0 ...)
do not apply; a matrix whose rows are not a multiple of 32 stays float, as Ollama keeps it F16.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.gguf.errors import GGUFError
from registry.gguf.file_types import FILE_TYPES, unsupported
from registry.gguf.reader import TensorInfo
from registry.gguf.tensor_types import GROUP_SIZE

_FLOAT_FILE_TYPES = ("F32", "F16", "BF16")
_LAYER = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class QuantizeRequest:
    """A validated request: `file_type` as Ollama names it afterwards (Q4_K_M for Q4_K)."""

    file_type: str

    @property
    def float_dtype(self) -> str | None:
        return self.file_type if self.file_type in _FLOAT_FILE_TYPES else None


def parse_quantize(name: str) -> QuantizeRequest:
    upper = name.strip().upper()
    if upper not in FILE_TYPES:
        raise GGUFError(unsupported(upper))
    return QuantizeRequest(FILE_TYPES[upper])


def check_source(request: QuantizeRequest, file_type: str) -> bool:
    """Whether the request changes anything for a GGUF of `file_type`; refuses quantized sources as Ollama does."""
    if file_type not in _FLOAT_FILE_TYPES:
        raise GGUFError("quantization is only supported for F16, BF16 and F32 models")
    return file_type != request.file_type


def is_quantizable(info: TensorInfo) -> bool:
    """Ollama's newType filter, for the tensors a text or embedding model keeps."""
    name = info.name
    return (
        name.endswith("weight")
        and len(info.shape) >= 2
        and "_norm.weight" not in name
        and "ffn_gate_inp" not in name
        and name not in ("position_embd.weight", "token_types.weight")
        and not name.startswith(("v.", "a.", "mm."))
    )


def _more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def requested_bits(request: QuantizeRequest, info: TensorInfo, layers: int, has_output: bool) -> int | None:
    """MLX bits for one quantizable tensor (None for float targets and for rows MLX cannot group)."""
    if request.float_dtype or info.cols % GROUP_SIZE:
        return None
    if request.file_type == "Q8_0":
        return 8
    name = info.name
    match = _LAYER.match(name)
    layer = int(match[1]) if match else -1
    mix_m = request.file_type == "Q4_K_M"
    if name == "output.weight" or (not has_output and name == "token_embd.weight"):
        return 6
    if "attn_v.weight" in name:
        if mix_m and _more_bits(layer, layers):
            return 6
        return 5 if not mix_m and layer < 4 else 4
    if "ffn_down" in name:
        if mix_m and _more_bits(layer, layers):
            return 6
        return 5 if not mix_m and layer < layers // 8 else 4
    if "attn_qkv.weight" in name and mix_m:
        return 5
    return 4
