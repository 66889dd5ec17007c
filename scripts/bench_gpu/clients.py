"""Streaming HTTP clients that cost the machine little: stdlib http.client, one thread per client, one new
connection per request (mlx_lm.server closes each one), and only the line that carries the token count parsed.

Times are taken at the client: TTFT is the first streamed line or event after sending the request, not an SSE
comment (mlx_lm.server writes `: keepalive` lines while it prefills: counted, they made its TTFT the time to
its first comment); a stream's decode rate is (tokens - 1) / (last byte - first line); an aggregate is tokens
received / wall time."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scripts.bench_gpu.servers import MODEL_NAME


@dataclass(frozen=True)
class Stream:
    ttft: float
    duration: float
    tokens: int

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / (self.duration - self.ttft) if self.tokens > 1 else 0.0


def _post_lines(url: str, path: str, body: dict[str, Any]) -> tuple[float, float, list[bytes]]:
    """POST and read the streamed body line by line: (TTFT, duration, the last lines). A connection the server
    resets before answering is retried (mlx_lm.server listens with a backlog of 5, so 16 clients connecting at
    once can overflow it); the time lost stays in the request's TTFT and duration."""
    started = time.perf_counter()
    for attempt in range(1, 4):
        try:
            return _attempt(url, path, body, started)
        except (ConnectionResetError, http.client.RemoteDisconnected) as e:
            print(f"    warning: {url}{path}: {e!r} before an answer (attempt {attempt}), retrying", flush=True)
            time.sleep(0.05)
    return _attempt(url, path, body, started)


def _attempt(url: str, path: str, body: dict[str, Any], started: float) -> tuple[float, float, list[bytes]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=900)
    try:
        conn.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"{url}{path}: HTTP {resp.status}: {resp.read()[:500]!r}")
        first = 0.0
        tail: list[bytes] = []
        for line in resp:
            if line.strip() and not line.startswith(b":"):
                first = first or time.perf_counter() - started
                tail = [*tail[-2:], line]
        return first, time.perf_counter() - started, tail
    finally:
        conn.close()


def generate(url: str, prompt: str, tokens: int) -> Stream:
    """mlx-shim's /api/generate, raw prompt (no template), greedy; the count is the final line's eval_count."""
    body = {"model": MODEL_NAME, "prompt": prompt, "raw": True, "stream": True,
            "options": {"temperature": 0, "num_predict": tokens}}  # fmt: skip
    ttft, duration, tail = _post_lines(url, "/api/generate", body)
    return Stream(ttft, duration, int(json.loads(tail[-1]).get("eval_count", 0)))


def completions(url: str, prompt: str, tokens: int, model: str | None = MODEL_NAME) -> Stream:
    """/v1/completions (mlx-shim and mlx_lm.server), greedy; the count is the usage event's completion_tokens.
    `model` None sends none: mlx_lm.server then uses the model it was started with."""
    body: dict[str, Any] = {"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
                            "stream_options": {"include_usage": True}}  # fmt: skip
    if model is not None:
        body["model"] = model
    ttft, duration, tail = _post_lines(url, "/v1/completions", body)
    for line in reversed(tail):
        data = line.decode().removeprefix("data:").strip()
        if data.startswith("{") and (usage := json.loads(data).get("usage")):
            return Stream(ttft, duration, int(usage["completion_tokens"]))
    raise RuntimeError(f"{url}/v1/completions: no usage event in {tail!r}")


def chat_turn(url: str, messages: list[dict[str, str]], tokens: int) -> tuple[float, str]:
    """One streamed /api/chat turn, greedy: (TTFT, the assistant's text)."""
    options = {"temperature": 0, "num_predict": tokens}
    body = {"model": MODEL_NAME, "messages": messages, "stream": True, "options": options}
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=900)
    started = time.perf_counter()
    try:
        conn.request("POST", "/api/chat", json.dumps(body).encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"{url}/api/chat: HTTP {resp.status}: {resp.read()[:500]!r}")
        first, text = 0.0, []
        for line in resp:
            if line.strip():
                first = first or time.perf_counter() - started
                text.append(json.loads(line)["message"]["content"])
        return first, "".join(text)
    finally:
        conn.close()


@dataclass(frozen=True)
class Aggregate:
    tokens_per_s: float
    median_ttft: float
    fewest_tokens: int  # below the limit asked for means a stream stopped early and the comparison is skewed
    total_tokens: int
    median_duration: float  # a request's whole time, sent to last byte


def concurrent(clients: int, requests: int, send: Callable[[int, int], Stream]) -> Aggregate:
    """`clients` threads released together, each sending `requests` requests back to back."""
    barrier = threading.Barrier(clients + 1)
    results: list[list[Stream]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(i: int) -> None:
        barrier.wait()
        try:
            results[i].extend(send(i, r) for r in range(requests))
        except BaseException as e:  # reported by the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    streams = [s for per_client in results for s in per_client]
    tokens = [s.tokens for s in streams]
    ttft, duration = statistics.median(s.ttft for s in streams), statistics.median(s.duration for s in streams)
    return Aggregate(sum(tokens) / wall, ttft, min(tokens), sum(tokens), duration)
