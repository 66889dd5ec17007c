"""Ollama's GGUF file-type names for `quantize` (fs/ggml/type.go ParseFileType), in one place for create's check
(`registry/quantize.py`) and the converter's (`registry/gguf/quantize_option.py`). No heavy imports."""

from __future__ import annotations

# Upper-cased request -> the file type Ollama names afterwards (Q4_K is Q4_K_M).
FILE_TYPES = {"F32": "F32", "F16": "F16", "BF16": "BF16", "Q8_0": "Q8_0", "Q4_K_S": "Q4_K_S", "Q4_K_M": "Q4_K_M",
              "Q4_K": "Q4_K_M"}  # fmt: skip
LISTED = "F32, F16, Q4_K_S, Q4_K_M, Q8_0"  # what Ollama's error lists (BF16 is accepted but left out there)


def unsupported(upper: str, listed: str = LISTED) -> str:
    """ParseFileType's refusal of an upper-cased name."""
    return f"unsupported quantization type {upper} - supported types are {listed}"
