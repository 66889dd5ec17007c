"""A model resident in memory, and how it gets there and leaves.

Unloading must really free memory: drop every reference, collect, and return MLX's cached buffers to the
system (`mx.clear_cache()`); dropping references alone frees nothing visible.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
from mlx.utils import tree_reduce

from registry.model_dir import ENCODER_ARCHITECTURES, ModelDirInfo, vision_capable
from registry.store import StoredModel
from shim.accelerator import warn_if_near_wired_limit
from shim.engine import mlx_lm_api

log = logging.getLogger("mlx_shim")


@dataclass
class LoadedModel:
    key: str
    stored: StoredModel
    info: ModelDirInfo
    model: Any
    tokenizer: Any
    memory_bytes: int  # the MLX arrays of the weights, as loaded (float32 norms and scales on the CPU backend)
    kv_bytes: int = 0  # KV caches: running sequences and the prefix cache (the engine's worker keeps it current)
    context_length: int = 0  # the num_ctx the last request ran with
    keep_alive: float = 0.0  # seconds to stay loaded once idle: the latest request's keep_alive, as Ollama
    expires_at: float = 0.0  # time.time() seconds; math.inf for forever
    last_used: float = field(default_factory=time.monotonic)
    split: dict[str, Any] | None = None  # across processes: backend, ranks, parallelism, each rank's weight bytes
    vision: Any = None  # shim.engine.vision.Vision for a model that takes images


def on_gpu() -> bool:
    """Metal or CUDA: Ollama reports such memory as VRAM; on the CPU backend size_vram is 0."""
    return bool(mx.default_device().type == mx.gpu)


def model_key(stored: StoredModel) -> str:
    """Same name and same manifest bytes: the same runnable model (a re-created name reloads)."""
    return f"{stored.name.full}@{stored.digest}"


def weights_bytes(stored: StoredModel) -> int:
    """What loading will take, before loading: the weight files' size (quantized weights stay packed)."""
    return sum(path.stat().st_size for path in stored.model_dir.glob("*.safetensors"))


def load_model(stored: StoredModel) -> LoadedModel:
    started = time.perf_counter_ns()
    info = stored.info()
    if info.architecture in ENCODER_ARCHITECTURES:
        return _load_encoder(stored, info, started)
    model, tokenizer = mlx_lm_api.load_model(str(stored.model_dir))
    if mx.default_device() == mx.cpu:
        # bf16/f16 run 6-10x slower than float32 on MLX's CPU backend; quantized weights stay packed.
        model.set_dtype(mx.float32)
    vision = None
    if vision_capable(info.config):
        from shim.engine.vision import load_vision

        try:
            vision = load_vision(stored.model_dir, model)
        except Exception:  # text still works; a request with images is then refused (NO_VISION)
            log.exception("%s: the vision tower did not load; serving text only", stored.name.display)
    elapsed = time.perf_counter_ns() - started
    log.info("loaded %s from %s in %.2fs", stored.name.display, stored.model_dir, elapsed / 1e9)
    memory = _nbytes(model.parameters()) + (vision.nbytes if vision is not None else 0)
    warn_if_near_wired_limit(stored.name.display, memory)  # Metal only
    return LoadedModel(model_key(stored), stored, info, model, tokenizer, memory, vision=vision)


def _load_encoder(stored: StoredModel, info: ModelDirInfo, started: int) -> LoadedModel:
    """An embedding model runs on our BERT (shim/embedding), not on mlx-lm, which has decoders only."""
    from shim.embedding import load_encoder

    encoder = load_encoder(stored.model_dir)
    log.info(
        "loaded %s from %s in %.2fs", stored.name.display, stored.model_dir, (time.perf_counter_ns() - started) / 1e9
    )
    memory = _nbytes(encoder.network.parameters())
    return LoadedModel(model_key(stored), stored, info, encoder, encoder.tokenizer, memory)


def unload_model(loaded: LoadedModel) -> None:
    loaded.model = None
    loaded.tokenizer = None
    loaded.vision = None
    gc.collect()
    mx.clear_cache()
    log.info("unloaded %s", loaded.stored.name.display)


def _nbytes(parameters: dict[str, Any]) -> int:
    """Bytes of every array in a parameter tree (weights as stored: quantized ones packed)."""
    return int(tree_reduce(lambda total, array: total + array.nbytes, parameters, 0) or 0)
