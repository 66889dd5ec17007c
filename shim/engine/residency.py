"""Which models are in memory: loading one, making room for it, unloading idle ones when their time is up.

Ollama's rules: at most OLLAMA_MAX_LOADED_MODELS models and the memory budget (weights plus KV caches) at once;
room is made by unloading idle models, least recently used first, and a model still answering is never
unloaded for another (the newcomer waits). Only the engine thread loads and unloads (MLX calls); the event
loop reads the list (/api/ps, early preparation) under the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from registry.store import StoredModel
from shim.distributed.lockstep import Lockstep
from shim.engine.loaded import LoadedModel, load_model, unload_model, weights_bytes
from shim.engine.side_work import human_bytes
from shim.errors import ShimError

log = logging.getLogger("mlx_shim")


class Residency:
    """The loaded models, keyed by model_key. `busy(key)`: the model has running or waiting work and must stay;
    `release(key)`: drop what the engine holds of the model (its batch) before its memory is freed."""

    def __init__(
        self,
        *,
        max_loaded_models: int,
        memory_budget: int,
        lockstep: Lockstep,
        busy: Callable[[str], bool],
        release: Callable[[str], None],
    ) -> None:
        self.max_loaded_models = max_loaded_models
        self.memory_budget = memory_budget
        self.models: dict[str, LoadedModel] = {}  # written on the engine thread, under `lock`
        self.lock = threading.Lock()
        self._lockstep = lockstep
        self._busy = busy
        self._release = release

    def snapshot(self) -> list[LoadedModel]:
        with self.lock:
            return list(self.models.values())

    def get(self, key: str) -> LoadedModel | None:
        return self.models.get(key)

    def make_room(self, stored: StoredModel) -> bool:
        """Unload idle models, least recently used first, until the new one fits the model count and the
        memory budget. False: busy models hold the room, wait for them. Refuses a model that can never fit."""
        need = self._lockstep.share_of(weights_bytes(stored))
        if need > self.memory_budget:
            budget = human_bytes(self.memory_budget)
            raise ShimError(f"model requires more system memory ({human_bytes(need)}) than is available ({budget})")
        while True:
            used = sum(m.memory_bytes + m.kv_bytes for m in self.models.values())
            if len(self.models) < self.max_loaded_models and used + need <= self.memory_budget:
                return True
            idle = [m for m in self.models.values() if not self._busy(m.key)]
            if not idle:
                return False
            self.unload(min(idle, key=lambda m: m.last_used).key)

    def load(self, stored: StoredModel, key: str) -> LoadedModel:
        try:
            loaded = self._lockstep.load(stored, load_model)
        except ShimError:
            raise
        except Exception as e:
            log.exception("loading %s failed", stored.name.display)
            raise ShimError(f"unable to load model: {e}") from e
        with self.lock:
            self.models[key] = loaded
        return loaded

    def unload(self, key: str) -> None:
        with self.lock:
            loaded = self.models.pop(key, None)
        self._release(key)  # the engine's last references to the model's arrays go before its memory does
        if loaded is not None:
            self._lockstep.unload(key)
            unload_model(loaded)

    def unload_all(self) -> None:
        for key in list(self.models):
            self.unload(key)

    def expire(self) -> None:
        """Unload idle models whose time is up (a model still answering waits for its last request)."""
        now = time.time()
        for m in list(self.models.values()):  # this thread is the only writer: no lock, every engine turn
            if m.expires_at <= now and not self._busy(m.key):
                self.unload(m.key)
