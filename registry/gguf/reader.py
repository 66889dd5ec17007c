"""Reading a GGUF file without loading it: metadata as plain Python values, tensor infos, and tensor rows read
one range at a time from the `gguf` package's memory map.

`mx.load` of a GGUF reads the whole file into memory and knows only a few tensor types, so it is never used here;
the `gguf` package (ggml-org's own reader) maps the file and reads every type. Pages of a tensor already converted
are handed back to the kernel (`release`), so a multi-GB file never sits in this process's resident memory.
"""

from __future__ import annotations

import contextlib
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.gguf_reader import ReaderField, ReaderTensor

from registry.gguf.errors import GGUFError

MAGIC = b"GGUF"


def is_gguf(path: Path) -> bool:
    """A GGUF file is one that starts with the magic bytes `GGUF`, whatever its name."""
    try:
        with Path(path).open("rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the file describes it. `shape` is row-major (rows, cols), the reverse of ggml's `ne` order,
    so it is what numpy, MLX and safetensors call the shape."""

    name: str
    ggml_type: str  # the GGMLQuantizationType name: "F32", "Q4_K", ...
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int

    @property
    def rows(self) -> int:
        return self.shape[0] if len(self.shape) > 1 else 1

    @property
    def cols(self) -> int:
        return self.shape[-1]


class GGUFFile:
    """An open GGUF file. Construct it with `GGUFFile.open`; the memory map lives as long as the object."""

    def __init__(self, path: Path, reader: GGUFReader) -> None:
        self.path = path
        self._reader = reader
        self._tensors: dict[str, ReaderTensor] = {t.name: t for t in reader.tensors}
        self.metadata: dict[str, Any] = {
            key: _field_value(field) for key, field in reader.fields.items() if not key.startswith("GGUF.")
        }
        self.tensors: dict[str, TensorInfo] = {t.name: _info(t) for t in reader.tensors}
        # The reader keeps every vocabulary entry as its own numpy arrays (~175 MB for a 49k vocabulary); the
        # plain values above are all that is needed, so its copy goes now.
        reader.fields.clear()

    @classmethod
    def open(cls, path: Path) -> GGUFFile:
        path = Path(path)
        if not is_gguf(path):
            raise GGUFError(f"{path.name} is not a GGUF file (it does not start with the bytes 'GGUF')")
        try:
            reader = GGUFReader(path, "r")
        except ValueError as e:  # an unknown tensor type id, a bad version, a truncated header
            raise GGUFError(f"cannot read GGUF file {path.name}: {_reason(e)}") from e
        except (OSError, IndexError, KeyError) as e:
            raise GGUFError(f"cannot read GGUF file {path.name}: {e}") from e
        return cls(path, reader)

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        if not isinstance(arch, str) or not arch:
            raise GGUFError(f"{self.path.name} has no general.architecture: it is not a model GGUF")
        return arch

    def rows(self, name: str, start: int = 0, stop: int | None = None, order: np.ndarray | None = None) -> np.ndarray:
        """Rows [start, stop) of a tensor as an owned array: (rows, cols) of the element dtype for F32, F16, F64
        and the integer types; (rows, bytes per row) of uint8 for every other type, BF16 included.
        `order`, when given, picks source rows by index (a row permutation) before the range is taken.
        The file pages read are handed back at once, so resident memory stays near one chunk."""
        tensor = self._tensors[name]
        data = tensor.data
        if data.ndim == 1:
            data = data.reshape(1, -1)
        elif data.ndim > 2:
            data = data.reshape(-1, data.shape[-1])
        end: int = data.shape[0] if stop is None else stop
        picked = order[start:end] if order is not None else None
        rows = np.array(data[picked] if picked is not None else data[start:end], copy=True)
        first, last = (start, end) if picked is None or not picked.size else (int(picked.min()), int(picked.max()) + 1)
        row_bytes = tensor.n_bytes // data.shape[0]
        self._drop(tensor.data_offset + first * row_bytes, tensor.data_offset + last * row_bytes)
        return rows

    def release(self, name: str) -> None:
        """Give a whole tensor's pages back to the kernel (see `_drop`)."""
        tensor = self._tensors[name]
        self._drop(tensor.data_offset, tensor.data_offset + tensor.n_bytes)

    def _drop(self, start: int, end: int) -> None:
        """The mapping is read-only, so dropping its pages costs nothing but a re-read from the page cache if they
        are touched again; without it every page read stays in this process's resident set until exit."""
        handle = getattr(self._reader.data, "_mmap", None)
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if handle is None or advice is None or end <= start:
            return
        start -= start % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError):  # only an optimisation
            handle.madvise(advice, start, end - start)


def _reason(error: ValueError) -> str:
    text = str(error)
    if "GGMLQuantizationType" in text:  # the enum refused an id it does not know
        return f"it holds a tensor type this gguf package does not know ({text})"
    return text


def _info(tensor: ReaderTensor) -> TensorInfo:
    shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
    return TensorInfo(
        name=tensor.name,
        ggml_type=tensor.tensor_type.name,
        shape=shape,
        n_elements=int(tensor.n_elements),
        n_bytes=int(tensor.n_bytes),
    )


def _decode(raw: np.ndarray) -> str:
    return bytes(raw).decode("utf-8", errors="replace")


def _field_value(field: ReaderField) -> Any:
    """A metadata value as plain Python: str, int, float, bool, or a list of those (nested for arrays of arrays)."""
    if not field.types:
        return None
    main = field.types[0]
    if main == GGUFValueType.STRING:
        return _decode(field.parts[-1])
    if main != GGUFValueType.ARRAY:
        return field.parts[-1].tolist()[0]
    sub = field.types[-1]
    if len(field.types) > 2:  # arrays of arrays: rare, kept as nested lists of raw parts
        return [part.tolist() for part in (field.parts[i] for i in field.data)]
    if sub == GGUFValueType.STRING:
        return [_decode(field.parts[i]) for i in field.data]
    if not field.data:
        return []
    values = np.concatenate([field.parts[i] for i in field.data])
    return values.tolist()
