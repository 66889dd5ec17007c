#!/usr/bin/env python3
"""What listing the store costs: `Store.list()` + `info()` for N models in process, and `/api/tags` over HTTP.

Each model is a copy of MODEL_DIR of its own (so nothing is shared between them), registered by a local-source
manifest. Prints the median and best of RUNS timings of each, e.g.

    python scripts/bench_model_info.py /work/tiny-model --models 50 --runs 21
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from registry.names import ModelName  # noqa: E402
from registry.store import Store  # noqa: E402


def fill(home: Path, model_dir: Path, count: int) -> Store:
    store = Store(home)
    for i in range(count):
        copy = home / "dirs" / f"m{i}"
        shutil.copytree(model_dir, copy)
        store.put(ModelName.parse(f"bench{i}:latest"), {"source": {"type": "local", "path": str(copy)}})
    return store


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    print(f"{label}: median {statistics.median(times):.2f} ms, best {min(times):.2f} ms ({len(times)} runs)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = fill(home, args.model_dir, args.models)
        report(f"Store.list()+info() x{args.models}", timed(lambda: [m.info() for m in store.list()], args.runs))
        port = free_port()
        env = {**os.environ, "MLX_SHIM_HOME": str(home), "OLLAMA_HOST": f"127.0.0.1:{port}", "MLX_SHIM_NO_BUILTIN": "1"}
        server = subprocess.Popen([sys.executable, "-m", "shim.cli", "serve"], env=env, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/api/tags"
            for _ in range(600):
                try:
                    with urllib.request.urlopen(url) as response:
                        assert len(json.loads(response.read())["models"]) == args.models
                    break
                except OSError:
                    time.sleep(0.1)

            def tags() -> None:
                with urllib.request.urlopen(url) as response:
                    response.read()

            report(f"GET /api/tags x{args.models} models", timed(tags, args.runs))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
