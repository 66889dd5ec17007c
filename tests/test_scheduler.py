"""The scheduler through the real server: continuous batching, prompt-cache reuse, queue limits, keep_alive
expiry, LRU eviction and the memory budget, each seen from the HTTP side as a client sees it."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, cli, start_server, stop_server

GREEDY = {"temperature": 0, "num_predict": 40}
# Hot sampling without a seed: long answers, and (unseeded) free to share a batch.
HOT = {"temperature": 10, "top_k": 0, "top_p": 1.0}
# Answers that run to num_predict whatever the trained weights: both end-of-turn tokens sit in the raw prompt
# and a presence penalty of 100 over the whole context keeps the greedy model from choosing them again.
ENDLESS_PREFIX = "<|endoftext|><|im_end|>"


def endless(num_predict: int) -> dict[str, Any]:
    return {"temperature": 0, "presence_penalty": 100, "repeat_last_n": -1, "num_predict": num_predict}


# A request that runs for a second or more on the tiny model.
LONG = {"model": "qwen-tiny", "prompt": ENDLESS_PREFIX + "def f(x):", "raw": True, "options": endless(1200)}
# Six intents the tiny model was trained on, six different fixed answers.
PROMPTS = [
    "hello",
    "thanks a lot",
    "goodbye",
    "who are you?",
    "tell me a joke",
    "why is the sky blue?",
    "hi bot",
    "make me laugh",
]
# A long system prompt makes prefill the bulk of a turn's cost, so reuse shows clearly.
LONG_SYSTEM = " ".join(f"Rule {i}: answer briefly and politely about Python code." for i in range(120))


def _register(server: Server, model_dir: Path, *names: str) -> None:
    for name in names:
        path = server.home / f"{name}.Modelfile"
        path.write_text(f"FROM {model_dir}\n")
        result = cli("create", name, "-f", str(path), env=server.env)
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def batching(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("sched"), {"OLLAMA_NUM_PARALLEL": "8"})
    _register(srv, tiny_model_dir, "qwen-tiny")
    yield srv
    stop_server(srv)


def post(server: Server, path: str, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=timeout)


def generate(server: Server, prompt: str, options: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"model": "qwen-tiny", "prompt": prompt, "stream": False, "think": False, "options": options, **extra}
    resp = post(server, "/api/generate", body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def ps(server: Server) -> list[dict[str, Any]]:
    return httpx.get(server.url + "/api/ps", timeout=10).json()["models"]


def test_parallel_greedy_requests_match_one_by_one(batching: Server) -> None:
    alone = [generate(batching, p, GREEDY) for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: generate(batching, p, GREEDY), PROMPTS))
    assert [r["response"] for r in together] == [r["response"] for r in alone]
    assert [r["eval_count"] for r in together] == [r["eval_count"] for r in alone]
    assert [r["prompt_eval_count"] for r in together] == [r["prompt_eval_count"] for r in alone]
    assert len({r["response"] for r in alone}) >= 4  # different intents, different answers: no mix-ups


def test_seeded_request_among_others_gives_its_output_alone(batching: Server) -> None:
    """Seeded sampling runs outside the batch: its neighbours cannot change its tokens."""
    seeded = {"temperature": 8, "top_k": 0, "top_p": 1.0, "seed": 1234, "num_predict": 48}
    alone = generate(batching, "tell me a joke", seeded)["response"]
    busy = {**HOT, "num_predict": 200}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        others = [pool.submit(generate, batching, f"Go on {i}.", busy, raw=True) for i in range(3)]
        time.sleep(0.05)
        crowded = pool.submit(generate, batching, "tell me a joke", seeded)
        assert crowded.result()["response"] == alone
        assert all(o.result()["done"] for o in others)


def _stream(server: Server, prompt: str, options: dict[str, Any], log: list[tuple[str, float]]) -> dict[str, Any]:
    body = {"model": "qwen-tiny", "prompt": prompt, "raw": True, "options": options}
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=120) as resp:
        for line in resp.iter_lines():
            if line:
                log.append(("line", time.monotonic()))
        last = json.loads(line)
    log.append(("done", time.monotonic()))
    return last


LONG_GREEDY = [ENDLESS_PREFIX + p for p in ("Go on.", "import os", "hello", "def f(x):")]


def test_concurrent_streams_decode_together(batching: Server) -> None:
    """Every stream has its first tokens before any of them ends: they share the batch, not take turns."""
    logs: list[list[tuple[str, float]]] = [[] for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        finals = list(pool.map(lambda i: _stream(batching, LONG_GREEDY[i], endless(300), logs[i]), range(4)))
    assert all(f["done"] and f["eval_count"] == 300 for f in finals)
    first_lines = [log[0][1] for log in logs]
    ends = [log[-1][1] for log in logs]
    assert max(first_lines) < min(ends)


def test_a_lone_stream_joined_mid_answer_goes_on_unchanged(batching: Server) -> None:
    """A lone request decodes on its own; when others arrive it moves into the batch with its KV cache.
    Its answer is the one it gives alone, and so are theirs."""
    options = endless(300)

    def alone(prompt: str) -> str:
        return generate(batching, prompt, options, raw=True)["response"]

    expected = [alone(p) for p in LONG_GREEDY]
    body = {"model": "qwen-tiny", "prompt": LONG_GREEDY[0], "raw": True, "options": options}
    parts = []
    with httpx.stream("POST", batching.url + "/api/generate", json=body, timeout=120) as resp:
        lines = resp.iter_lines()
        while len(parts) < 20:
            parts.append(json.loads(next(lines))["response"])
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            others = list(pool.map(alone, LONG_GREEDY[1:]))
            parts += [json.loads(line)["response"] for line in lines if line]
    assert ["".join(parts), *others] == expected


def test_disconnecting_one_stream_leaves_the_others_intact(batching: Server) -> None:
    expected = [generate(batching, p, GREEDY)["response"] for p in PROMPTS[:3]]
    log = batching.home / "server.log"
    before = log.read_text().count("generation cancelled")
    started = threading.Barrier(4)

    def greedy_stream(prompt: str) -> str:
        body = {"model": "qwen-tiny", "prompt": prompt, "think": False, "options": GREEDY}
        parts = []
        with httpx.stream("POST", batching.url + "/api/generate", json=body, timeout=120) as resp:
            lines = resp.iter_lines()
            started.wait()
            for line in lines:
                if line:
                    parts.append(json.loads(line)["response"])
        return "".join(parts)

    def leaver() -> None:
        body = {**LONG, "options": endless(100000)}  # an answer that cannot end before the hang-up
        with httpx.stream("POST", batching.url + "/api/generate", json=body, timeout=120) as resp:
            lines = resp.iter_lines()
            next(lines)
            started.wait()
            next(lines)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        gone = pool.submit(leaver)
        answers = list(pool.map(greedy_stream, PROMPTS[:3]))
        gone.result()
    assert answers == expected
    deadline = time.monotonic() + 10
    while log.read_text().count("generation cancelled") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text().count("generation cancelled") == before + 1


def _chat(server: Server, messages: list[dict[str, str]]) -> dict[str, Any]:
    body = {"model": "qwen-tiny", "messages": messages, "stream": False, "think": False, "options": GREEDY}
    resp = post(server, "/api/chat", body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_second_chat_turn_is_served_from_the_prompt_cache(batching: Server) -> None:
    system = {"role": "system", "content": LONG_SYSTEM}
    turn1 = [system, {"role": "user", "content": "How do I sort a list?"}]
    first = _chat(batching, turn1)
    turn2 = [*turn1, first["message"], {"role": "user", "content": "And in reverse?"}]
    warm = _chat(batching, turn2)
    # Unloading drops the model's prefix cache: the same prompt now runs cold.
    assert post(batching, "/api/generate", {"model": "qwen-tiny", "keep_alive": 0}).status_code == 200
    cold = _chat(batching, turn2)
    assert warm["prompt_eval_count"] == cold["prompt_eval_count"] > 1000  # the whole prompt, as Ollama counts
    assert warm["message"] == cold["message"]
    assert warm["prompt_eval_duration"] * 4 < cold["prompt_eval_duration"]


def test_prompt_cache_keeps_conversations_apart(batching: Server) -> None:
    """Two chats sharing a system prompt, interleaved, answer as each does on a fresh model."""
    system = {"role": "system", "content": "You are a helpful assistant."}
    chats = [[system, {"role": "user", "content": q}] for q in ("hello", "tell me a joke")]
    for follow_ups in (("thanks a lot", "make me laugh"), ("goodbye", "who are you?")):
        for chat, follow_up in zip(chats, follow_ups, strict=True):
            chat += [_chat(batching, chat)["message"], {"role": "user", "content": follow_up}]
    warm = [_chat(batching, chat)["message"] for chat in chats]
    cold = []
    for chat in chats:
        assert post(batching, "/api/generate", {"model": "qwen-tiny", "keep_alive": 0}).status_code == 200
        cold.append(_chat(batching, chat)["message"])
    assert warm == cold
    assert warm[0] != warm[1]


def test_ps_size_counts_the_kv_cache(batching: Server) -> None:
    assert post(batching, "/api/generate", {"model": "qwen-tiny", "keep_alive": 0}).status_code == 200
    assert post(batching, "/api/generate", {"model": "qwen-tiny"}).status_code == 200
    (loaded,) = ps(batching)
    weights = loaded["size"]
    assert loaded["size_vram"] == 0  # the CPU backend, as Ollama reports CPU models
    done = _chat(batching, [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "Hi"}])
    (after,) = ps(batching)
    # Two layers, keys and values, 2 KV heads of 16 float32s: 512 bytes a token, and the whole prompt is kept.
    assert after["size"] - weights >= done["prompt_eval_count"] * 512


@pytest.fixture
def lifecycle(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, {"OLLAMA_MAX_LOADED_MODELS": "2", "OLLAMA_MAX_QUEUE": "1", "OLLAMA_NUM_PARALLEL": "1"})
    _register(srv, tiny_model_dir, "qwen-tiny", "second", "third")
    yield srv
    stop_server(srv)


def test_keep_alive_expiry_unloads_and_lru_evicts(lifecycle: Server) -> None:
    srv = lifecycle
    body = {"prompt": "hi", "stream": False, "think": False, "options": {"temperature": 0, "num_predict": 2}}
    assert post(srv, "/api/generate", {**body, "model": "qwen-tiny", "keep_alive": "2s"}).status_code == 200
    assert post(srv, "/api/generate", {**body, "model": "second"}).status_code == 200
    assert {m["name"] for m in ps(srv)} == {"qwen-tiny:latest", "second:latest"}
    table = cli("ps", env=srv.env)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    digest = next(m["digest"] for m in ps(srv) if m["name"] == "second:latest")
    assert rows[0].split()[:2] == ["second:latest", digest[:12]]  # the latest expiry first
    assert rows[0].split()[4:] == ["100%", "CPU", "4096", "4", "minutes", "from", "now"]
    deadline = time.monotonic() + 10
    while len(ps(srv)) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m["name"] for m in ps(srv)] == ["second:latest"]  # expired after 2 s; the 5 m one stays
    assert post(srv, "/api/generate", {**body, "model": "qwen-tiny"}).status_code == 200
    assert post(srv, "/api/generate", {**body, "model": "second"}).status_code == 200  # qwen-tiny now LRU
    assert post(srv, "/api/generate", {**body, "model": "third"}).status_code == 200
    assert {m["name"] for m in ps(srv)} == {"second:latest", "third:latest"}


def test_full_queue_answers_503_and_a_waiting_client_that_leaves_is_dropped(lifecycle: Server) -> None:
    srv = lifecycle
    log = srv.home / "server.log"
    with httpx.stream("POST", srv.url + "/api/generate", json=LONG, timeout=60) as running:
        lines = running.iter_lines()
        next(lines)  # decoding: the one slot (OLLAMA_NUM_PARALLEL=1) is taken
        # A raw client sends a request and hangs up while it waits: the one pending place is free again.
        leaver = socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])))
        data = json.dumps(LONG).encode()
        head = f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n\r\n"
        leaver.sendall(head.encode() + data)
        time.sleep(0.3)
        # Now this request is the one pending request OLLAMA_MAX_QUEUE=1 allows; one more is refused.
        leaver.close()
        deadline = time.monotonic() + 5
        while "dropped: client disconnected while queued" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "dropped: client disconnected while queued" in log.read_text()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(post, srv, "/api/generate", {**LONG, "stream": False})
            time.sleep(0.3)
            busy = post(srv, "/api/generate", {**LONG, "stream": False})
            assert busy.status_code == 503
            assert busy.content == b'{"error":"server busy, please try again.  maximum pending requests exceeded"}'
            assert sum(1 for _ in lines) > 1000  # the running stream was not disturbed
            assert waiting.result().json()["eval_count"] == 1200  # the waiting one ran once the slot was free
    assert log.read_text().count("generation cancelled") == 0


def test_concurrent_requests_for_a_cold_model_load_it_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    srv = start_server(tmp_path)
    try:
        _register(srv, tiny_model_dir, "qwen-tiny")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda p: generate(srv, p, GREEDY), PROMPTS[:4]))
        assert all(r["done"] for r in results)
        assert (srv.home / "server.log").read_text().count("loaded qwen-tiny:latest") == 1
    finally:
        stop_server(srv)


def test_memory_budget_unloads_idle_models_to_make_room(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A budget for one model but not two: loading the second unloads the first (idle) one."""
    weights = sum(p.stat().st_size for p in tiny_model_dir.glob("*.safetensors"))
    srv = start_server(tmp_path, {"MLX_SHIM_MEMORY_BUDGET": str(weights * 3 // 2)})
    try:
        _register(srv, tiny_model_dir, "qwen-tiny", "second")
        body = {"prompt": "hi", "stream": False, "think": False, "options": {"temperature": 0, "num_predict": 2}}
        assert post(srv, "/api/generate", {**body, "model": "qwen-tiny"}).status_code == 200
        assert post(srv, "/api/generate", {**body, "model": "second"}).status_code == 200
        assert [m["name"] for m in ps(srv)] == ["second:latest"]
    finally:
        stop_server(srv)


def test_prompt_cache_stays_within_its_byte_limit(tmp_path: Path, tiny_model_dir: Path) -> None:
    limit = 200 * 512  # 200 tokens of the tiny model's keys and values
    srv = start_server(tmp_path, {"MLX_SHIM_PROMPT_CACHE_BYTES": str(limit)})
    try:
        _register(srv, tiny_model_dir, "qwen-tiny")
        assert post(srv, "/api/generate", {"model": "qwen-tiny"}).status_code == 200
        (loaded,) = ps(srv)
        weights = loaded["size"]
        short = [{"role": "user", "content": "hello"}]
        _chat(srv, short)
        (after_short,) = ps(srv)
        assert 0 < after_short["size"] - weights <= limit  # a short chat is kept
        long = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "hello"}]
        assert _chat(srv, long)["prompt_eval_count"] > 1000
        (after_long,) = ps(srv)
        assert after_long["size"] - weights <= limit  # a thousand tokens' cache does not fit: not kept
    finally:
        stop_server(srv)


def test_model_larger_than_the_memory_budget_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    srv = start_server(tmp_path, {"MLX_SHIM_MEMORY_BUDGET": "1000"})
    try:
        _register(srv, tiny_model_dir, "qwen-tiny")
        resp = post(srv, "/api/generate", {"model": "qwen-tiny", "prompt": "hi", "stream": False})
        assert resp.status_code == 500
        assert resp.json()["error"].startswith("model requires more system memory (")
        assert resp.json()["error"].endswith(") than is available (1000 B)")
        assert httpx.get(srv.url + "/api/version").status_code == 200
    finally:
        stop_server(srv)


def test_a_running_stream_goes_on_while_a_long_embedding_runs(batching: Server) -> None:
    """Embeddings run on the same worker thread as decoding: a large /api/embed must leave running answers
    a token per embedding batch, not freeze them until every vector is done."""
    arrivals: list[float] = []
    first = threading.Event()

    def stream() -> None:
        with httpx.stream(
            "POST", batching.url + "/api/generate", json={**LONG, "options": endless(3000)}, timeout=120
        ) as resp:
            for line in resp.iter_lines():
                if line:
                    arrivals.append(time.monotonic())
                    first.set()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        streaming = pool.submit(stream)
        assert first.wait(60)
        started = time.monotonic()
        body = {"model": "qwen-tiny", "input": ["some text to embed here " * 20] * 300}
        resp = post(batching, "/api/embed", body)
        ended = time.monotonic()
        streaming.result()
    assert resp.status_code == 200 and len(resp.json()["embeddings"]) == 300
    # Tokens keep arriving through the second half of the embedding too (frozen: none there at all).
    assert sum((started + ended) / 2 < t < ended for t in arrivals) >= 10
