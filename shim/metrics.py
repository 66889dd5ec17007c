"""`GET /metrics`: the server's counters in Prometheus' text format, through prometheus-client.

Nothing here runs per token. Request counts come from the access log's own counters (shim/access_log.py);
token counts and latencies from each answer's Done, once per answer, on the event loop (ModelService's
`on_done`); queue depth, running sequences, the prompt cache and the loaded models are read from the engine
when scraped, without locking its worker thread (shim/engine/stats.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shim.access_log import RequestCounters
from shim.engine import Done
from shim.routing import exact_route
from shim.service import ModelBackend

_NS = 1e-9
# Latencies from a few ms (a warm tiny model) to minutes (a cold large one on a busy CPU).
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self, counters: RequestCounters, backend: ModelBackend) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Snapshot(counters, backend))
        labels = ["model"]
        self.prompt_tokens = Counter(
            "mlx_shim_prompt_tokens", "Prompt tokens of finished answers (prompt_eval_count, cached ones included).",
            labels, registry=self.registry,
        )  # fmt: skip
        self.generated_tokens = Counter(
            "mlx_shim_generated_tokens", "Tokens generated (eval_count).", labels, registry=self.registry
        )
        self.ttft = Histogram(
            "mlx_shim_time_to_first_token_seconds",
            "From the request reaching the engine to its first token: queueing, loading and prefill included.",
            labels, buckets=_TTFT_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.tpot = Histogram(
            "mlx_shim_time_per_output_token_seconds",
            "Each answer's mean time between its generated tokens (one observation per answer of 2+ tokens).",
            labels, buckets=_TPOT_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def observe(self, model: str, done: Done) -> None:
        """One finished answer (ModelService's on_done); a load-only answer never comes here."""
        self.prompt_tokens.labels(model).inc(done.prompt_eval_count)
        self.generated_tokens.labels(model).inc(done.eval_count)
        if done.eval_count:
            self.ttft.labels(model).observe((done.load_duration + done.prompt_eval_duration) * _NS)
        if done.eval_count > 1:
            self.tpot.labels(model).observe(done.eval_duration * _NS / (done.eval_count - 1))

    def routes(self) -> list[Route]:
        return [exact_route("/metrics", self.endpoint, methods=["GET"])]

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Snapshot(Collector):
    """What is read at scrape time: the access log's counters and the engine's state."""

    def __init__(self, counters: RequestCounters, backend: ModelBackend) -> None:
        self.counters = counters
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "mlx_shim_requests", "HTTP requests answered, by method, route pattern and status.",
            labels=["method", "route", "status"],
        )  # fmt: skip
        for (method, route, status), count in list(self.counters.by_route.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        yield _gauge("mlx_shim_requests_in_flight", "HTTP requests being answered now.", self.counters.in_flight)
        yield CounterMetricFamily(
            "mlx_shim_request_duration_seconds", "Seconds spent answering HTTP requests.", self.counters.seconds
        )
        stats = self.backend.stats()
        yield _gauge("mlx_shim_queue_depth", "Requests waiting for the engine (OLLAMA_MAX_QUEUE).", stats.queued)
        yield _gauge("mlx_shim_active_sequences", "Sequences decoding now, all models together.", stats.running)
        yield CounterMetricFamily(
            "mlx_shim_prompt_cache_hits", "Prefills that started from a cached prompt prefix.", stats.prompt_cache_hits
        )
        yield CounterMetricFamily(
            "mlx_shim_prompt_cache_tokens", "Prompt tokens taken from the prompt cache instead of prefilled.",
            stats.prompt_cache_tokens,
        )  # fmt: skip
        loaded = list(self.backend.loaded())
        yield _gauge("mlx_shim_loaded_models", "Models resident in memory.", len(loaded))
        memory = GaugeMetricFamily(
            "mlx_shim_model_memory_bytes", "Memory of each loaded model: its weights, and its KV caches "
            "(running sequences and the prompt cache).", labels=["model", "kind"],
        )  # fmt: skip
        for model in loaded:
            memory.add_metric([model.stored.name.display, "weights"], model.memory_bytes)
            memory.add_metric([model.stored.name.display, "kv_cache"], model.kv_bytes)
        yield memory


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value)
