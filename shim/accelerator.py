"""Which MLX backend runs the models (Metal, CUDA or the CPU), and the defaults that depend on it: how many
sequences decode together (OLLAMA_NUM_PARALLEL unset), how much memory the loaded models may take
(MLX_SHIM_MEMORY_BUDGET unset), Metal's wired limit and CUDA's attention kernels.

Batch sizes (README, "Choosing OLLAMA_NUM_PARALLEL"): each default keeps a batch at least as fast in total as
running its requests one after another, which batching on MLX is at every size measured.
- CPU, 4: measured here (small and full vocabularies): 1.4x one stream's throughput at 4, 1.8x at 16 at best,
  while on two shared cores every stream slows to the batch's pace;
- CUDA, 16: measured on an H100/H200 (issue 12): on Qwen2.5-0.5B/7B shapes the aggregate keeps rising to 16
  (0.5B: 423 tok/s at parallel 4, 1212 at 16; 7B: 193 and 278);
- Metal, 8: not measured here (no Mac). mlx-lm's published figures show batching paying well past 8 on Apple
  silicon (mlx-lm PR #468: 133 tok/s at batch 1, 810 at 32) and mlx_lm.server decodes up to 32 at once; 8
  keeps the KV caches of a 4096-token context for a 7B model near 2 GB on a machine whose memory is also the
  system's.

Memory: on a GPU the budget is the accelerator's memory as MLX reports it (`mx.device_info()`): CUDA's
`total_memory`, Metal's `memory_size` (the unified memory); on the CPU backend, the machine's RAM. A model
past Metal's `max_recommended_working_set_size` still runs in mlx-lm, slowly, with a warning past 90% of it,
so the budget does not refuse it and the warning here is mlx-lm's.

Attention on CUDA: MLX runs a prompt's attention through cuDNN where it can, and cuDNN builds a plan for every
new shape, query and key lengths both: on an H100 (Qwen2.5-0.5B shapes, mlx-cuda 0.32.4) a prefill of a
length not seen before took 43-75 ms where a repeat took 7-11 (scripts/bench_shapes.py). A server sees new
lengths all the time (every chat turn's new tokens after its cached prefix, every prompt slice at a new
offset), so it would pay that on almost every request. MLX's own kernels need no plan (8-24 ms for a new
length) and prefill a little slower once warm (512 tokens: 52-58k against 67k tok/s; 2048: 84-90k against
141k): the server turns cuDNN's attention off unless MLX_CUDA_USE_CUDNN_SDPA is set. Not measured here:
memory at long contexts, where MLX's prompt attention (unfused: the scores are materialized) briefly holds
rows x heads x slice x context scores (a 7B's 28 heads, a 2048-token slice over a 32k context: about 3.8 GB
in float16). Metal and the CPU have no such setting.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

log = logging.getLogger("mlx_shim")

Backend = Literal["metal", "cuda", "cpu"]
NUM_PARALLEL: dict[Backend, int] = {"cpu": 4, "cuda": 16, "metal": 8}
# mlx-lm's wired_limit warns when a model takes more than this share of the recommended working set.
_NEAR_WIRED = 0.9
CUDNN_ATTENTION = "MLX_CUDA_USE_CUDNN_SDPA"  # read by MLX at its first attention, once per process


def backend() -> Backend:
    """The backend MLX computes on by default; "cpu" too when MLX cannot be imported."""
    try:
        import mlx.core as mx
    except ImportError:
        return "cpu"
    if mx.default_device().type != mx.gpu:
        return "cpu"
    return "metal" if mx.metal.is_available() else "cuda"


def default_num_parallel(which: Backend | None = None) -> int:
    return NUM_PARALLEL[which or backend()]


def default_memory_budget(which: Backend | None = None) -> int:
    """The bytes loaded models may take: the accelerator's memory, or the machine's RAM on the CPU backend
    (and wherever MLX does not report the device's memory)."""
    which = which or backend()
    if which != "cpu":
        info = _device_info()
        key = "memory_size" if which == "metal" else "total_memory"
        if int(info.get(key) or 0) > 0:
            return int(info[key])
    return physical_memory()


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def prepare_backend() -> None:
    """The backend's settings for this process, made before any model runs (the engine thread's start, each
    follower rank's): on CUDA, MLX's attention kernels rather than cuDNN's (see above); on Metal, the wired
    limit."""
    if backend() == "cuda":
        os.environ.setdefault(CUDNN_ATTENTION, "0")
    set_wired_limit()


def set_wired_limit() -> int | None:
    """On Metal, as mlx-lm's `wired_limit` does while it generates: let the GPU keep up to the recommended
    working set wired (resident), so a large model's weights are not paged out between steps. Set once for
    the server's life (mlx-lm's BatchGenerator sets the same limit while it exists). Returns the limit set,
    None elsewhere. Not verified here: this machine has no Metal."""
    if backend() != "metal":
        return None
    import mlx.core as mx

    limit = int(_device_info().get("max_recommended_working_set_size") or 0)
    if limit <= 0:
        return None
    mx.set_wired_limit(limit)
    return limit


def warn_if_near_wired_limit(name: str, model_bytes: int, limit: int | None = None) -> bool:
    """mlx-lm's warning for a model close to the recommended working set (generation may then be slow);
    True when it was logged. `limit` None: Metal's recommended working set (no warning elsewhere)."""
    if limit is None and backend() == "metal":
        limit = int(_device_info().get("max_recommended_working_set_size") or 0)
    if not limit or model_bytes <= _NEAR_WIRED * limit:
        return False
    log.warning(
        "%s requires %d MB, close to the maximum recommended size of %d MB: generation may be slow. See "
        "https://github.com/ml-explore/mlx-lm/tree/main#large-models",
        name, model_bytes // 2**20, limit // 2**20,
    )  # fmt: skip
    return True


def _device_info() -> dict[str, Any]:
    import mlx.core as mx

    try:
        return dict(mx.device_info())
    except (AttributeError, RuntimeError):  # an MLX without device_info, or a device it cannot query
        return {}
