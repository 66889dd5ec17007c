"""A soak: N mixed requests at C concurrency against one server, repeated in runs; per run it prints the
failures (an unexpected status or a stream cut short), the hangs (no answer within --timeout), p50/p99 latency,
and the server's RSS, sampled every 0.2 s, with its growth from one run to the next.

The mix covers every endpoint family, streamed and not: generate and chat (Ollama), /v1/chat/completions,
/v1/completions, /v1/messages, /api/embed, show, tags, ps, and a few bad requests that must get their 4xx.

    python scripts/soak.py [--requests 1000] [--concurrency 32] [--runs 3] [--model-dir DIR] [--url URL]

Without --url a server is started on loopback with the tiny model (--model-dir, MLX_SHIM_TEST_MODEL_DIR or a
freshly built one). Exit status 1 when any request failed or hung.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import cli, start_server, stop_server  # noqa: E402  (the same server the tests start)

HI = [{"role": "user", "content": "hi"}]
OPTS = {"num_predict": 24}
# (method, path, body, streamed, expected status)
MIX: list[tuple[str, str, dict[str, Any] | None, bool, int]] = [
    ("POST", "/api/generate", {"model": "tiny", "prompt": "hi", "options": OPTS}, True, 200),
    ("POST", "/api/generate", {"model": "tiny", "prompt": "hi", "stream": False, "options": OPTS}, False, 200),
    ("POST", "/api/chat", {"model": "tiny", "messages": HI, "options": OPTS}, True, 200),
    ("POST", "/api/chat", {"model": "tiny", "messages": HI, "stream": False, "options": OPTS}, False, 200),
    ("POST", "/v1/chat/completions", {"model": "tiny", "messages": HI, "max_tokens": 24, "stream": True}, True, 200),
    ("POST", "/v1/chat/completions", {"model": "tiny", "messages": HI, "max_tokens": 24}, False, 200),
    ("POST", "/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": 24}, False, 200),
    ("POST", "/v1/messages", {"model": "tiny", "messages": HI, "max_tokens": 24, "stream": True}, True, 200),
    ("POST", "/api/embed", {"model": "tiny", "input": ["hello", "world"]}, False, 200),
    ("POST", "/api/show", {"model": "tiny"}, False, 200),
    ("GET", "/api/tags", None, False, 200),
    ("GET", "/api/ps", None, False, 200),
    ("POST", "/api/generate", {"model": "nope", "prompt": "hi"}, False, 404),
    ("POST", "/api/chat", {"model": "tiny", "messages": "x"}, False, 400),
]
_STREAM_ENDS = {"/api/generate": '"done":true', "/api/chat": '"done":true', "/v1/chat/completions": "data: [DONE]",
                "/v1/messages": "message_stop"}  # fmt: skip


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    hangs: int = 0
    rss: list[int] = field(default_factory=list)


async def _one(client: httpx.AsyncClient, i: int, run: Run, timeout: float) -> None:
    method, path, body, streamed, status = MIX[i % len(MIX)]
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(method, path, json=body) as response:
                text = (await response.aread()).decode()
        if response.status_code != status:
            run.failures.append(f"{path}: {response.status_code} {text[:200]}")
        elif streamed and _STREAM_ENDS[path] not in text[-400:]:
            run.failures.append(f"{path}: stream ended without its last event: {text[-200:]!r}")
        run.latencies.append(time.perf_counter() - started)
    except TimeoutError:
        run.hangs += 1
    except httpx.HTTPError as e:
        run.failures.append(f"{path}: {type(e).__name__}: {e}")


async def _run(url: str, requests: int, concurrency: int, timeout: float, run: Run) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def bounded(i: int) -> None:
            async with gate:
                await _one(client, i, run, timeout)

        await asyncio.gather(*(bounded(i) for i in range(requests)))


def _rss(pid: int) -> int:
    """Resident bytes of the process, from /proc (Linux) or ps."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import subprocess

    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return int(out or 0) * 1024


def _sample_rss(pid: int, run: Run, done: threading.Event) -> None:
    while not done.wait(0.2):
        run.rss.append(_rss(pid))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def soak(url: str, pid: int | None, requests: int, concurrency: int, runs: int, timeout: float) -> bool:
    results: list[Run] = []
    for n in range(1, runs + 1):
        run = Run()
        done = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(pid, run, done)) if pid else None
        if sampler:
            sampler.start()
        started = time.perf_counter()
        asyncio.run(_run(url, requests, concurrency, timeout, run))
        wall = time.perf_counter() - started
        done.set()
        if sampler:
            sampler.join()
            run.rss.append(_rss(pid))  # type: ignore[arg-type]
        results.append(run)
        rss = f", RSS end {run.rss[-1] / 2**20:.0f} MiB (peak {max(run.rss) / 2**20:.0f})" if run.rss else ""
        growth = ""
        if n > 1 and run.rss and results[-2].rss:
            growth = f", RSS growth since run {n - 1}: {100 * (run.rss[-1] / results[-2].rss[-1] - 1):+.1f}%"
        print(
            f"run {n}: {requests} requests at {concurrency} concurrency in {wall:.1f} s: "
            f"{len(run.failures)} failures, {run.hangs} hangs, p50 {statistics.median(run.latencies) * 1e3:.0f} ms, "
            f"p99 {_percentile(run.latencies, 0.99) * 1e3:.0f} ms{rss}{growth}",
            flush=True,
        )
        for failure in run.failures[:10]:
            print("  failure:", failure)
    return all(not r.failures and not r.hangs for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120, help="seconds after which a request counts as hung")
    parser.add_argument("--url", help="an already running server (its RSS is not sampled)")
    parser.add_argument("--model-dir", type=Path, default=os.environ.get("MLX_SHIM_TEST_MODEL_DIR"))
    args = parser.parse_args()
    if args.url:
        return 0 if soak(args.url, None, args.requests, args.concurrency, args.runs, args.timeout) else 1
    model_dir = args.model_dir
    if model_dir is None:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)
    home = Path(tempfile.mkdtemp(prefix="soak-"))
    server = start_server(home, {"MLX_SHIM_ACCESS_LOG": "0"})
    try:
        (home / "Modelfile").write_text(f"FROM {model_dir}\n")
        created = cli("create", "tiny", "-f", str(home / "Modelfile"), env=server.env)
        if created.returncode != 0:
            raise SystemExit(created.stderr)
        ok = soak(server.url, server.process.pid, args.requests, args.concurrency, args.runs, args.timeout)
    finally:
        stop_server(server)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
