"""Ending a thread that ran MLX work. MLX 0.32 aborts the whole process at exit ("terminate called without an
active exception", exit 134) when a thread that used MLX, the main thread included, ended with its streams
alive (ml-explore/mlx#4327). Every thread that may run MLX (the engine, conversions, quantizations, the main
thread) calls this last."""

from __future__ import annotations

import sys


def release_mlx_streams() -> None:
    """Destroy the streams this thread created; nothing to do where MLX was never imported."""
    if "mlx.core" in sys.modules:
        import mlx.core as mx

        mx.clear_streams()
