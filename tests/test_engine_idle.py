"""The engine thread sleeps while a request is prepared on the pool: in-process, to count its loop's turns."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from registry.local import create_from_modelfile
from registry.names import ModelName
from registry.store import Store
from shim.engine import CompletionRequest, Engine, Message, collect
from shim.options import GenerationOptions


def test_the_engine_thread_waits_for_a_first_request_being_prepared(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model loaded for its first request has no keep-alive timer until that request starts: its expiry
    time was taken for due, and the loop spun (thousands of turns a second) all through the preparation,
    competing with it for the CPU and the GIL. A prompt of 100k words takes a large part of a second to
    tokenize on the pool; the loop now turns a few times (arrival, load, preparation done, steps)."""
    stored = create_from_modelfile(Store(tmp_path), ModelName.parse("m"), f"FROM {tiny_model_dir}\n", base_dir=tmp_path)
    request = CompletionRequest(
        model=stored,
        options=GenerationOptions(temperature=0, num_predict=1, num_ctx=512),  # fitted to num_ctx on the pool
        messages=[Message("user", "hello there " * 50_000)],
    )
    engine = Engine(default_keep_alive=300, max_loaded_models=1)
    turns = 0
    take = engine._take_jobs

    def counted() -> Any:
        nonlocal turns
        turns += 1
        return take()

    monkeypatch.setattr(engine, "_take_jobs", counted)
    engine.start()
    try:
        asyncio.run(collect(engine.complete(request)))
    finally:
        engine.stop()
    assert turns < 50
