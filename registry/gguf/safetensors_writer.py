"""Safetensors written tensor by tensor, never holding the model in memory.

Every output's name, dtype and shape is known from the plan, so each shard's header (and so every tensor's byte
range) is fixed before any weight is converted; converted row chunks are then written in place with pwrite.
Shards split at `max_shard_bytes` (mlx-lm's own 5 GB by default) with a `model.safetensors.index.json`, the
names mlx-lm's loader globs (`model*.safetensors`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from registry.gguf.plan import OutputSpec, TensorJob
from registry.gguf.reader import GGUFFile

MAX_SHARD_BYTES = 5 << 30


@dataclass
class _Placed:
    spec: OutputSpec
    shard: int
    offset: int  # absolute byte offset of the tensor's data in its shard file
    written: int = 0


def _shards(jobs: list[TensorJob], max_bytes: int) -> list[list[TensorJob]]:
    """Consecutive jobs per shard; a job's outputs (weight, scales, biases) always share one shard."""
    shards: list[list[TensorJob]] = [[]]
    size = 0
    for job in jobs:
        job_bytes = sum(spec.nbytes for spec in job.outputs)
        if shards[-1] and size + job_bytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(job)
        size += job_bytes
    return shards


def _header(specs: list[OutputSpec]) -> bytes:
    entries: dict[str, object] = {"__metadata__": {"format": "mlx"}}
    offset = 0
    for spec in specs:
        entries[spec.name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data starts 8-byte aligned
    return len(header).to_bytes(8, "little") + header


def shard_names(count: int) -> list[str]:
    if count == 1:
        return ["model.safetensors"]
    return [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]


def write_safetensors(
    gguf: GGUFFile,
    jobs: list[TensorJob],
    directory: Path,
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    on_tensor: Callable[[int], None] | None = None,
) -> int:
    """Convert and write every job's outputs into `directory`; returns the bytes written. `on_tensor(i)` is called
    after the i-th job (for progress); each job's source pages are released once it is written."""
    shards = _shards(jobs, max_shard_bytes)
    names = shard_names(len(shards))
    placed: dict[str, _Placed] = {}
    fds: list[int] = []
    total = 0
    try:
        for index, shard_jobs in enumerate(shards):
            specs = [spec for job in shard_jobs for spec in job.outputs]
            header = _header(specs)
            fd = os.open(directory / names[index], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fds.append(fd)
            offset = len(header)
            for spec in specs:
                placed[spec.name] = _Placed(spec, index, offset)
                offset += spec.nbytes
            os.pwrite(fd, header, 0)
            os.ftruncate(fd, offset)
            total += offset
        for number, job in enumerate(jobs):
            for first_row, arrays in job.chunks(gguf):
                for name, array in arrays.items():
                    slot = placed[name]
                    data = array.tobytes()
                    os.pwrite(fds[slot.shard], data, slot.offset + first_row * slot.spec.row_bytes)
                    slot.written += len(data)
            gguf.release(job.source.name)
            if on_tensor is not None:
                on_tensor(number)
        short = [slot.spec.name for slot in placed.values() if slot.written != slot.spec.nbytes]
        if short:
            raise AssertionError(f"converted tensors do not fill their declared sizes: {short[:5]}")
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)
    if len(names) > 1:
        index_file = {
            "metadata": {"total_size": sum(slot.spec.nbytes for slot in placed.values())},
            "weight_map": {name: names[slot.shard] for name, slot in placed.items()},
        }
        (directory / "model.safetensors.index.json").write_text(json.dumps(index_file, indent=2) + "\n")
    return total
