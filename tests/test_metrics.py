"""GET /metrics through the real server: scraped before and after a few requests and parsed with
prometheus-client's own parser; the differences must be exactly what those requests did."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

MODEL = "qwen-tiny:latest"
CHAT = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Name three colours."}], "stream": False,
        "think": False, "options": {"temperature": 0, "num_predict": 24}}  # fmt: skip


def _scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=120)


def test_metrics_count_what_the_requests_did(client: httpx.Client) -> None:
    before = _scrape(client)
    answers = [client.post("/api/chat", json=CHAT).json() for _ in range(2)]  # the second reuses the first's cache
    assert client.get("/v1/models/qwen-tiny").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    after = _scrape(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("mlx_shim_requests_total", method="POST", route="/api/chat", status="200") == 2
    assert grew("mlx_shim_requests_total", method="GET", route="/v1/models/{model}", status="200") == 1
    assert grew("mlx_shim_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("mlx_shim_requests_total", method="GET", route="/metrics", status="200") == 1  # the first scrape
    assert grew("mlx_shim_generated_tokens_total", model=MODEL) == sum(a["eval_count"] for a in answers) > 0
    assert grew("mlx_shim_prompt_tokens_total", model=MODEL) == sum(a["prompt_eval_count"] for a in answers)
    assert grew("mlx_shim_prompt_cache_hits_total") >= 1
    # The second prefill reuses all of the first's prompt but its last token (recomputed for its logits); the
    # first may reuse a prefix of an earlier test's.
    prompt = answers[1]["prompt_eval_count"]
    assert prompt - 1 <= grew("mlx_shim_prompt_cache_tokens_total") <= 2 * prompt - 2
    assert grew("mlx_shim_time_to_first_token_seconds_count", model=MODEL) == 2
    assert grew("mlx_shim_time_per_output_token_seconds_count", model=MODEL) == 2
    ttft = grew("mlx_shim_time_to_first_token_seconds_sum", model=MODEL)
    assert 0 < ttft < 120 and grew("mlx_shim_request_duration_seconds_total") > ttft
    assert after[("mlx_shim_requests_in_flight", ())] == 1  # the scrape itself
    assert after[("mlx_shim_queue_depth", ())] == 0 and after[("mlx_shim_active_sequences", ())] == 0
    assert after[("mlx_shim_loaded_models", ())] >= 1
    assert after[("mlx_shim_model_memory_bytes", (("kind", "weights"), ("model", MODEL)))] > 0
    assert after[("mlx_shim_model_memory_bytes", (("kind", "kv_cache"), ("model", MODEL)))] > 0
