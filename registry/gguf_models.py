"""A GGUF as the source of a model (create from uploaded files, a Modelfile `FROM ./x.gguf`, an Ollama import):
found among the files, converted once into an owned MLX directory.

Which files are a GGUF follows Ollama's detectModelTypeFromFiles: a `.safetensors` file makes the set an MLX
model directory; otherwise a file named `*.gguf`, or whose blob starts with GGUF's magic bytes whatever its
name, is a GGUF. Ollama takes split GGUFs and several files; mlx-shim converts one GGUF per model, and a file
beside it that is not a GGUF is refused with Ollama's text (`supplied file was not in GGUF format`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.blobs import Blobs
from registry.owned import build_owned, gguf_model_id
from registry.quantize import Quantization
from shim.errors import Kind, ShimError

ONLY_GGUF = "supplied file was not in GGUF format"  # Ollama's errOnlyGGUFSupported


class GGUFFilesError(ShimError):
    """Uploaded files a create cannot make one model of (several GGUFs, a GGUF among other files): a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Kind.BAD_INPUT)


@dataclass(frozen=True)
class GGUFSource:
    """The GGUF a model is made from: where its bytes are, and its digest (which names the converted directory)."""

    path: Path
    digest: str
    name: str = ""


def find_gguf(files: dict[str, str], blobs: Blobs) -> GGUFSource | None:
    """The GGUF among uploaded files, None when they are an MLX model directory (or nothing we know)."""
    if any(name.endswith(".safetensors") for name in files):
        return None
    ggufs = {n: d for n, d in files.items() if n.endswith(".gguf") or is_gguf_file(blobs.path(d))}
    if not ggufs:
        return None
    if len(ggufs) > 1:
        raise GGUFFilesError(
            f"mlx-shim converts one GGUF file per model, got {len(ggufs)} ({', '.join(sorted(ggufs))}); "
            "merge split GGUFs first (llama-gguf-split --merge)"
        )
    if len(files) > len(ggufs):
        raise GGUFFilesError(ONLY_GGUF)
    name, digest = next(iter(ggufs.items()))
    path = blobs.path(digest)
    if not is_gguf_file(path):  # named .gguf, but its bytes are something else
        raise GGUFFilesError(ONLY_GGUF)
    return GGUFSource(path, digest, name)


def is_gguf_file(path: Path) -> bool:
    """GGUF's magic bytes (the converter's check); False for a file that cannot be read."""
    from registry.gguf import is_gguf

    try:
        return bool(is_gguf(path))
    except OSError:
        return False


def convert_to_owned(
    models_dir: Path,
    source: GGUFSource,
    quantization: Quantization | None,
    progress: Callable[[str], None],
    check: Callable[[Path], object],
) -> tuple[Path, Any]:
    """The owned directory `source` converts into (converted now, or found from an earlier conversion of the
    same GGUF and quantization), and the converter's report (None when it was found). Raises the converter's
    GGUFError for what cannot be converted; nothing of a failed conversion stays."""
    from registry.gguf import convert_gguf

    report: list[Any] = []

    def build(target: Path) -> None:
        progress("converting model")
        quantize = quantization.name if quantization else None
        converted = convert_gguf(source.path, target, quantize=quantize, progress=progress)
        if converted.skipped_tensors:  # vision towers and projectors inside the GGUF: mlx-shim answers text only
            progress(f"left out {len(converted.skipped_tensors)} tensors the text model does not use (vision)")
        report.append(converted)

    directory_id = gguf_model_id(source.digest, quantization.name if quantization else None)
    directory, _ = build_owned(models_dir, directory_id, build, check)
    return directory, report[0] if report else None
