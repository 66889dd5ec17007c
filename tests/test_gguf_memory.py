"""A GGUF far larger than the converter's working memory converts without ever being resident: the tensors are
read in row chunks from the memory map, their pages handed back, and written in place (peak RSS measured in a
fresh process, from the kernel's high-water mark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

from tests.gguf_tiny import add_byte_level_vocab

ROWS, HIDDEN = 1 << 20, 64  # two 128 MiB float16 matrices: a 256 MiB file
MEASURE = """
import json, resource, sys
from pathlib import Path
from registry.gguf.convert import convert_gguf  # every heavy import (MLX, gguf) before the baseline

def peak_and_current():
    try:  # Linux: the kernel's own numbers for this process
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024
    except OSError:  # macOS: ru_maxrss is in bytes there
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak

before = peak_and_current()[1]
result = convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"before": before, "peak": peak_and_current()[0], "size": result.size}))
"""
# The kernel's VmHWM, not getrusage's ru_maxrss, where it exists: Linux carries the forking process's high-water
# mark into ru_maxrss across exec, so a child of this (large) test process would report the test's memory.


def write_large_gguf(path: Path) -> int:
    """Tensor infos first, then each tensor's data on its own, so the test itself never holds the whole file."""
    writer = GGUFWriter(path, "llama")
    for key, value in (("block_count", 0), ("context_length", 2048), ("embedding_length", HIDDEN),
                       ("feed_forward_length", 128), ("attention.head_count", 4)):  # fmt: skip
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    add_byte_level_vocab(writer, 300)
    names = ("token_embd.weight", "output.weight")
    for name in names:
        writer.add_tensor_info(name, (ROWS, HIDDEN), np.dtype(np.float16), ROWS * HIDDEN * 2, GGMLQuantizationType.F16)
    writer.add_tensor_info("output_norm.weight", (HIDDEN,), np.dtype(np.float32), HIDDEN * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for seed in range(len(names)):
        writer.write_tensor_data(
            np.random.default_rng(seed).standard_normal((ROWS, HIDDEN), np.float32).astype(np.float16)
        )
    writer.write_tensor_data(np.ones(HIDDEN, np.float32))
    writer.close()
    return path.stat().st_size


def test_peak_memory_stays_far_below_the_file(tmp_path: Path) -> None:
    size = write_large_gguf(tmp_path / "large.gguf")
    run = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path / "large.gguf"), str(tmp_path / "model")],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)  # fmt: skip
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    growth = measured["peak"] - measured["before"]
    print(f"{size / 2**20:.0f} MiB GGUF: peak RSS {measured['peak'] / 2**20:.0f} MiB, +{growth / 2**20:.0f} MiB")
    assert measured["size"] > size * 0.99  # everything was written (float16 stays float16)
    assert growth < size / 8  # the conversion's own memory: a few row chunks, not the tensors
