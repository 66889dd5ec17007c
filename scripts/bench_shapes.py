"""What a prompt length never seen before costs: one model forward over each (rows, tokens) shape, twice, and the
steady prefill rate of one long prompt. On MLX CUDA, cuDNN's attention builds a plan per query and key
length, so a new shape's first forward is slow (shim/accelerator.py; measured on an H100, Qwen2.5-0.5B
shapes: 43-58 ms against 7-9 ms repeated). Run it under each setting to compare, in separate processes (MLX
reads the setting once):

    python scripts/bench_shapes.py MODEL_DIR                              # MLX's default: cuDNN on
    MLX_CUDA_USE_CUDNN_SDPA=0 python scripts/bench_shapes.py MODEL_DIR    # what mlx-shim serve uses on CUDA

MODEL_DIR: an MLX model directory, e.g. the one `scripts/bench_gpu.py --config 0.5b` builds under
/tmp/mlx-shim-bench-models. Shapes are (rows, new tokens, tokens already cached): 1x30+100 is one prompt's
30 tokens after 100 in its KV cache, as a chat turn after a cached prefix. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import time

import mlx.core as mx
from mlx_lm import load
from mlx_lm.models.cache import make_prompt_cache

# Each shape twice (first time, then seen), then neighbours that differ in one length only.
SHAPES = [
    (1, 50, 0), (1, 50, 0), (1, 51, 0), (1, 51, 0), (1, 77, 0), (1, 77, 0), (1, 200, 0), (1, 200, 0),
    (2, 50, 0), (2, 50, 0), (3, 50, 0), (8, 63, 0), (8, 63, 0), (8, 64, 0), (7, 63, 0), (7, 63, 0),
    (1, 30, 100), (1, 30, 100), (1, 30, 101), (3, 1, 0), (3, 1, 0), (5, 1, 40), (5, 1, 40),
]  # fmt: skip


def forward_ms(model: object, rows: int, tokens: int, cached: int = 0) -> float:
    """One forward over `rows` x `tokens` new tokens after `cached` ones, in ms (the cached ones not timed)."""
    cache = make_prompt_cache(model)
    if cached:
        model(mx.random.randint(0, 1000, (rows, cached)), cache=cache)  # type: ignore[operator]
        mx.eval([c.state for c in cache])
    x = mx.random.randint(0, 1000, (rows, tokens))
    started = time.perf_counter()
    model(x, cache=cache)  # type: ignore[operator]
    mx.eval([c.state for c in cache])
    return (time.perf_counter() - started) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir")
    args = p.parse_args()
    model, _ = load(args.model_dir)
    forward_ms(model, 1, 16)  # the process's first forward (kernels loaded or compiled), not shown
    setting = os.environ.get("MLX_CUDA_USE_CUDNN_SDPA", "unset")
    print(f"{mx.default_device()}, MLX_CUDA_USE_CUDNN_SDPA={setting}: ms per forward, shape rows x tokens + cached")
    print(" ".join(f"{r}x{n}+{c}:{forward_ms(model, r, n, c):.0f}" for r, n, c in SHAPES))
    for tokens in (512, 2048):
        forward_ms(model, 1, tokens)
        ms = sorted(forward_ms(model, 1, tokens) for _ in range(3))[1]
        print(f"prefill of {tokens} tokens, seen before: {tokens / ms * 1000:,.0f} tok/s")


if __name__ == "__main__":
    main()
