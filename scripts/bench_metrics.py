"""Does /metrics cost throughput? Aggregate decode tokens/s at 8 and 16 concurrent streams on two servers of
this checkout, one with metrics on (and scraped twice a second while it runs, 30 times Prometheus' default
rate) and one with MLX_SHIM_METRICS=0, measured in alternation in this one run; prints each round and
the ratio of the medians (target: within 1%).

On a machine shared with other work, wall-clock tokens/s swings far more than 1% from one measurement to the
next, so each measurement also reports tokens per CPU-second of the server process (all its threads, read
from /proc on Linux): what metrics could add is CPU work, and the CPU time a process gets is what other
load changes least.

    python scripts/bench_metrics.py [--model-dir DIR] [--rounds 5] [--requests 2] [--tokens 128]

Without --model-dir the tiny model is built first (about a minute). Both servers run OLLAMA_NUM_PARALLEL=16
and MLX compile on; only one decodes at a time, the other idles.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

import httpx
from prometheus_client import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_concurrency import aggregate_decode, serve  # noqa: E402  (the same clients and server setup)

from shim.access_log import RequestCounters  # noqa: E402
from shim.metrics import Metrics  # noqa: E402
from tests.conftest import stop_server  # noqa: E402
from tests.fake_backend import FakeBackend, done  # noqa: E402


def scrape_until(url: str, stop: threading.Event) -> list[int]:
    """Scrape `url` twice a second on a thread of its own until `stop` is set; the list fills with the sizes
    of the scrapes (to show they happened)."""
    sizes: list[int] = []

    def loop() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.wait(0.5):
                sizes.append(len(http.get(url).content))

    threading.Thread(target=loop, daemon=True).start()
    return sizes


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def direct_costs() -> tuple[float, float]:
    """Microseconds of what metrics add outside the engine, timed in-process: one answer's observation
    (on the event loop, once per answer) and one scrape with one model's series, as in the run above (each
    model answered since start adds about 40 lines to a scrape)."""
    metrics = Metrics(RequestCounters(), FakeBackend())
    finished = done(generated=128)
    metrics.observe("model0", finished)
    observe = min(timeit.repeat(lambda: metrics.observe("model0", finished), number=1000, repeat=5)) / 1000
    scrape = min(timeit.repeat(lambda: generate_latest(metrics.registry), number=20, repeat=5)) / 20
    return observe * 1e6, scrape * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2, help="requests per client per measurement")
    parser.add_argument("--tokens", type=int, default=128, help="num_predict of each request")
    args = parser.parse_args()
    model_dir = args.model_dir
    if model_dir is None:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)
    env = {"OLLAMA_NUM_PARALLEL": "16", "MLX_SHIM_ACCESS_LOG": "0"}
    servers = {"on": serve(model_dir, env), "off": serve(model_dir, {**env, "MLX_SHIM_METRICS": "0"})}
    try:
        assert httpx.get(servers["on"].url + "/metrics").status_code == 200
        assert httpx.get(servers["off"].url + "/metrics").status_code == 404
        for server in servers.values():  # load the model and warm the compiled kernels
            aggregate_decode(server, 4, 1, 32)
        rates: dict[tuple[str, int], list[float]] = {}
        per_cpu_rates: dict[tuple[str, int], list[float]] = {}
        scrapes = 0
        for r in range(args.rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for clients in (8, 16):
                for name in order:
                    stop = threading.Event()
                    sizes = scrape_until(servers[name].url + "/metrics", stop) if name == "on" else []
                    pid = servers[name].process.pid
                    started, cpu = time.perf_counter(), cpu_seconds(pid)
                    rate = aggregate_decode(servers[name], clients, args.requests, args.tokens)
                    per_cpu = rate * (time.perf_counter() - started) / (cpu_seconds(pid) - cpu)
                    stop.set()
                    scrapes += len(sizes)
                    rates.setdefault((name, clients), []).append(rate)
                    per_cpu_rates.setdefault((name, clients), []).append(per_cpu)
                    print(f"round {r + 1} {clients:2d} streams metrics {name:3s}: {rate:7.1f} tok/s, "
                          f"{per_cpu:6.1f} tok per CPU-s", flush=True)  # fmt: skip
        observe_us, scrape_us = direct_costs()
        print(
            f"\n{scrapes} scrapes of /metrics during the 'on' measurements; in-process, one answer's observation "
            f"costs {observe_us:.1f} µs on the event loop and a scrape {scrape_us:.0f} µs (off the engine thread)"
        )
        for unit, table in (("tok/s", rates), ("tok per CPU-s", per_cpu_rates)):
            for clients in (8, 16):
                on, off = statistics.median(table[("on", clients)]), statistics.median(table[("off", clients)])
                pairs = zip(table[("on", clients)], table[("off", clients)], strict=True)
                paired = statistics.median(a / b for a, b in pairs)
                spread = max(table[("off", clients)]) / min(table[("off", clients)]) - 1
                print(f"{clients:2d} streams, {unit}: median {on:.1f} with metrics, {off:.1f} without: ratio "
                      f"{on / off:.3f}; median of the rounds' on/off ratios {paired:.3f} (off's own spread "
                      f"{spread:.1%})")  # fmt: skip
    finally:
        for server in servers.values():
            stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
