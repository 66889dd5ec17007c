"""Unloading really frees memory: the engine in-process (MLX's allocator is only visible from inside), with
real generation on the tiny model. Everything else about the scheduler is tested over HTTP."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import mlx.core as mx

from registry.local import create_from_modelfile
from registry.names import ModelName
from registry.store import Store
from shim.engine import CompletionRequest, Engine, Message, collect
from shim.options import GenerationOptions


def test_unload_returns_weights_and_kv_caches_to_the_system(tmp_path: Path, tiny_model_dir: Path) -> None:
    stored = create_from_modelfile(Store(tmp_path), ModelName.parse("m"), f"FROM {tiny_model_dir}\n", base_dir=tmp_path)
    request = CompletionRequest(
        model=stored,
        options=GenerationOptions(temperature=0, num_predict=8),
        messages=[Message("user", "hello " * 100)],
    )

    async def run() -> tuple[int, int, int]:
        engine = Engine(default_keep_alive=300, max_loaded_models=3)
        engine.start()
        try:
            gc.collect()
            mx.clear_cache()
            before = mx.get_active_memory()
            for _ in range(2):
                await collect(engine.complete(request))
            (loaded,) = engine.loaded()
            held, weights = loaded.kv_bytes, loaded.memory_bytes
            await engine.unload(stored)
            assert engine.loaded() == []
            # Nothing of the weights or KV caches is parked in MLX's buffer cache (a stray 8-byte random key
            # of another test may be).
            assert mx.get_cache_memory() < weights // 100
            return before, held, mx.get_active_memory()
        finally:
            engine.stop()

    before, kv_bytes, after = asyncio.run(run())
    assert kv_bytes >= 100 * 512  # the prefix cache held the prompt's keys and values
    assert after <= before
