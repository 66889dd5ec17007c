"""The entry point: a GGUF file in, an MLX model directory out (config.json, safetensors, and the tokenizer files
registry/gguf/tokenizer.py rebuilds from the GGUF's vocabulary, with the chat template and stop tokens).

The directory is assembled under a hidden staging name beside the target and renamed into place at the end, so a
failure at any step (an unsupported tensor, a full disk, an interrupt) leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import LlamaFileType

from registry.gguf.architectures import Architecture, architecture
from registry.gguf.configs import decoder_config
from registry.gguf.encoders import encoder_config, write_sentence_transformers_files
from registry.gguf.errors import GGUFError
from registry.gguf.metadata import Hyperparameters
from registry.gguf.plan import Plan, plan_conversion
from registry.gguf.quantize_option import QuantizeRequest, check_source, parse_quantize
from registry.gguf.reader import GGUFFile
from registry.gguf.safetensors_writer import MAX_SHARD_BYTES, write_safetensors
from registry.gguf.tokenizer import write_tokenizer_files

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GGUFConversion:
    """What a conversion produced, for the create route's log and for /api/show's details."""

    target: Path
    architecture: str  # GGUF's general.architecture (Ollama's family): "llama", "gemma3", "nomic-bert", ...
    model_type: str  # config.json's model_type: "llama", "gemma3_text", "nomic_bert", ...
    parameter_count: int  # logical elements of the weights kept (not packed words)
    tensor_types: dict[str, int]  # GGUF tensor type -> number of the model's tensors of that type
    quantization: str  # Ollama's file type name: the GGUF's ("Q4_1", "Q4_K_M", "F16") or the one requested
    skipped_tensors: tuple[str, ...] = field(default_factory=tuple)  # vision/projector tensors left out
    size: int = 0  # bytes of the model directory


def file_type_name(metadata: dict[str, Any], plan: Plan) -> str:
    """general.file_type as Ollama prints it (MOSTLY_Q4_K_M -> Q4_K_M); the most common tensor type without it."""
    value = metadata.get("general.file_type")
    try:
        name = LlamaFileType(int(value)).name if value is not None else None
    except ValueError:
        name = None
    if name is None or name == "GUESSED":
        weights = [job.source for job in plan.jobs if len(job.source.shape) == 2]
        counts: dict[str, int] = {}
        for info in weights:
            counts[info.ggml_type] = counts.get(info.ggml_type, 0) + info.n_elements
        return max(counts, key=lambda k: counts[k]) if counts else "F32"
    name = name.removeprefix("MOSTLY_").removeprefix("ALL_")
    return "MXFP4" if name == "MXFP4_MOE" else name


def _request(quantize: str | None, file_type: str) -> QuantizeRequest | None:
    if not quantize:
        return None
    request = parse_quantize(quantize)
    return request if check_source(request, file_type) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def _prepare_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise GGUFError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)


def _configs(gguf: GGUFFile, arch: Architecture, plan: Plan, summary: str) -> dict[str, Any]:
    hp = Hyperparameters(gguf.metadata, gguf.architecture)
    tensors = {job.source.name: job.source for job in plan.jobs}
    config = encoder_config(arch, hp, tensors) if arch.encoder else decoder_config(arch, hp, tensors, plan.rope)
    quantization = plan.quantization_config()
    if quantization:
        config["quantization"] = quantization
    config["gguf"] = {"architecture": gguf.architecture, "file_type": summary}
    return config


def convert_gguf(
    source: Path,
    target: Path,
    *,
    quantize: str | None = None,
    progress: Progress | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> GGUFConversion:
    """Convert the GGUF at `source` into an MLX model directory at `target` (which must not exist, or be empty).
    `quantize` is Ollama's create option (q8_0, q4_K_M, f16, ...); `progress` receives short status lines.
    Raises GGUFError, with a message for the user, for anything that cannot be converted."""
    say = progress or (lambda _line: None)
    source, target = Path(source), Path(target)
    if quantize:
        parse_quantize(quantize)  # an unknown name fails before any file is touched
    _prepare_target(target)
    gguf = GGUFFile.open(source)  # callers say "parsing GGUF" (Ollama's status) before calling
    arch = architecture(gguf.architecture)
    plan = plan_conversion(gguf, arch, None)
    file_type = file_type_name(gguf.metadata, plan)
    request = _request(quantize, file_type)
    if request is not None:
        say(f"quantizing {file_type} model to {request.file_type}")
        plan = plan_conversion(gguf, arch, request)
    summary = request.file_type if request else file_type
    config = _configs(gguf, arch, plan, summary)

    staging = target.parent / f".{target.name}.converting-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        count = len(plan.jobs)
        say(f"converting {gguf.architecture} {file_type} model to MLX ({count} tensors)")
        tenth = max(1, count // 10)

        def on_tensor(number: int) -> None:
            if (number + 1) % tenth == 0 or number + 1 == count:
                say(f"converted {number + 1}/{count} tensors")

        write_safetensors(gguf, plan.jobs, staging, max_shard_bytes=max_shard_bytes, on_tensor=on_tensor)
        _write_json(staging / "config.json", config)
        if arch.encoder:
            hp = Hyperparameters(gguf.metadata, gguf.architecture)
            write_sentence_transformers_files(staging, hp, hp.int("embedding_length"), hp.int("context_length"))
        say("writing tokenizer")
        write_tokenizer_files(gguf.metadata, staging)  # tokenizer.json, tokenizer_config.json, generation_config
        size = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
        if target.exists():
            target.rmdir()  # empty, checked above
        os.rename(staging, target)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise GGUFError(f"writing the converted model failed: {e}") from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say("converted")
    return GGUFConversion(
        target=target,
        architecture=gguf.architecture,
        model_type=arch.model_type,
        parameter_count=plan.parameter_count,
        tensor_types=plan.tensor_types,
        quantization=summary,
        skipped_tensors=tuple(plan.skipped),
        size=size,
    )
