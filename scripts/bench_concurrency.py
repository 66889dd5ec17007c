"""What do continuous batching and the prompt cache buy? Two measurements through the Ollama API, each
printed as ratios measured in this one run:

1. Aggregate decode tokens/s with 1, 2, 4, 8 concurrent streaming clients, relative to 1 client. Each client
   sends streaming /api/generate requests back to back (unseeded hot sampling, so the requests may share a
   batch; answers end at the model's end-of-turn token or --tokens); aggregate = tokens received / wall time.
2. Time to first token (at the client) of turn 10 of a chat relative to turn 1, with the prompt cache on and
   off (a second server with MLX_SHIM_PROMPT_CACHE_BYTES=0). Each repeat is a new conversation.

    python scripts/bench_concurrency.py [--model-dir DIR] [--repeats 5] [--plot bench.png]

Without --model-dir the tiny model is built first (about a minute). Targets with the tiny model on a CPU:
8 clients >= 3x the aggregate of 1 client; turn-10 TTFT <= 1.5x turn 1 with the cache. The server runs with
OLLAMA_NUM_PARALLEL=8 unless --parallel says otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_COMPILE_SETTING = os.environ.get("MLX_DISABLE_COMPILE")

from tests.conftest import Server, cli, start_server, stop_server  # noqa: E402  (the same server the tests start)

# The tests turn MLX's kernel compilation off to start fast; a throughput benchmark runs as users do.
if _COMPILE_SETTING is None:
    os.environ.pop("MLX_DISABLE_COMPILE", None)

CLIENTS = (1, 2, 4, 8)
HOT = {"temperature": 10.0, "top_k": 400, "top_p": 1.0}
# User turns of a realistic length; the tiny model answers each briefly.
QUESTIONS = [
    "Hello! I am working on a small Python project that reads log files and sums up errors per hour. "
    "Could you help me think about how to structure it, turn by turn? First, what should I call the module?",
    "Thanks a lot. Next I need to parse timestamps like 2024-05-01T12:00:00Z from each line; "
    "which standard library function would you use and why?",
    "Good. Now how would I group the parsed lines by hour, keeping memory use low for big files?",
    "Tell me a joke about log files, please, something short that I can put in the README.",
    "Who are you, by the way? I would like to credit you properly in the acknowledgements section.",
    "How should I test the parser? I was thinking of pytest with a few sample files in a fixtures folder.",
    "What about files that are still being written by the server? Should I tail them or read in chunks?",
    "Make me laugh once more, then give me one tip about naming variables in that code base.",
    "Why is the sky blue? Sorry, unrelated, my daughter just asked me and I did not know what to say.",
    "Goodbye for now, thanks for all the help today; please summarise the plan in one sentence.",
]


def stream_tokens(http: httpx.Client, server: Server, body: dict[str, Any]) -> int:
    """Send one streaming /api/generate request; the eval_count of its final line. (Only that line is parsed:
    the clients share the machine with the server and should take as little of it as they can.)"""
    last = "{}"
    with http.stream("POST", server.url + "/api/generate", json=body) as resp:
        for line in resp.iter_lines():
            last = line or last
    return int(json.loads(last).get("eval_count", 0))


def aggregate_decode(server: Server, clients: int, requests: int, tokens: int) -> float:
    """Tokens/s over all clients, each sending `requests` back-to-back streaming requests."""

    def client(i: int) -> int:
        total = 0
        with httpx.Client(timeout=600) as http:  # one connection per client, as a real client keeps one
            for r in range(requests):
                options = {**HOT, "num_predict": tokens}
                body = {"model": "m", "prompt": f"Go on {i} {r}.", "raw": True, "options": options}
                total += stream_tokens(http, server, body)
        return total

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(client, range(clients)))
    return total / (time.perf_counter() - started)


def chat_ttfts(server: Server, repeat: int) -> list[float]:
    """TTFT of each turn of one new conversation (greedy; a unique system prompt per repeat)."""
    messages: list[dict[str, str]] = [
        {"role": "system", "content": f"Conversation {repeat}. You are a helpful assistant. Answer briefly."}
    ]
    ttfts = []
    http = httpx.Client(timeout=600)
    for question in QUESTIONS:
        messages.append({"role": "user", "content": question})
        body = {"model": "m", "messages": messages, "think": False, "options": {"temperature": 0, "num_predict": 64}}
        started = time.perf_counter()
        first = 0.0
        parts = []
        with http.stream("POST", server.url + "/api/chat", json=body) as resp:
            for line in resp.iter_lines():
                if line:
                    first = first or time.perf_counter() - started
                    parts.append(json.loads(line)["message"]["content"])
        ttfts.append(first)
        messages.append({"role": "assistant", "content": "".join(parts)})
    http.close()
    return ttfts


def serve(model_dir: Path, env: dict[str, str]) -> Server:
    home = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    server = start_server(home, env)
    modelfile = home / "Modelfile"
    modelfile.write_text(f"FROM {model_dir}\n")
    result = cli("create", "m", "-f", str(modelfile), env=server.env)
    if result.returncode != 0:
        stop_server(server)
        raise SystemExit(result.stderr)
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3, help="requests per client per measurement")
    parser.add_argument("--tokens", type=int, default=256, help="num_predict of each decode request")
    parser.add_argument("--parallel", default="8", help="OLLAMA_NUM_PARALLEL of the server (default 8)")
    parser.add_argument("--plot", type=Path, help="write a PNG of both measurements (needs the bench extra)")
    args = parser.parse_args()

    model_dir = args.model_dir
    if model_dir is None:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)

    # 1. Batching: rounds over client counts (so drifting machine load hits all counts alike), medians.
    server = serve(model_dir, {"OLLAMA_NUM_PARALLEL": args.parallel})
    try:
        aggregate_decode(server, 8, 1, 64)  # warm-up: load, kernel compilation for batch shapes
        rates: dict[int, list[float]] = {n: [] for n in CLIENTS}
        ratios: dict[int, list[float]] = {n: [] for n in CLIENTS}
        for _ in range(args.repeats):
            round_rates = {n: aggregate_decode(server, n, args.requests, args.tokens) for n in CLIENTS}
            for n in CLIENTS:
                rates[n].append(round_rates[n])
                ratios[n].append(round_rates[n] / round_rates[1])
        on = [chat_ttfts(server, r) for r in range(args.repeats)]
    finally:
        stop_server(server)
    # 2. The same chats on a server without the prompt cache.
    server = serve(model_dir, {"OLLAMA_NUM_PARALLEL": args.parallel, "MLX_SHIM_PROMPT_CACHE_BYTES": "0"})
    try:
        chat_ttfts(server, -1)  # warm-up
        off = [chat_ttfts(server, r) for r in range(args.repeats)]
    finally:
        stop_server(server)

    print(f"model {model_dir}, OLLAMA_NUM_PARALLEL={args.parallel}, {args.repeats} repeats, medians")
    print("clients  aggregate tok/s  ratio to 1 client (median of per-round ratios)")
    for n in CLIENTS:
        target = "  (target >= 3.0)" if n == 8 else ""
        print(f"{n:>7}  {statistics.median(rates[n]):>15.1f}  {statistics.median(ratios[n]):>6.2f}x{target}")
    turns_on = [statistics.median(t[i] for t in on) * 1000 for i in range(len(QUESTIONS))]
    turns_off = [statistics.median(t[i] for t in off) * 1000 for i in range(len(QUESTIONS))]
    ratio_on = statistics.median(t[-1] / t[0] for t in on)
    ratio_off = statistics.median(t[-1] / t[0] for t in off)
    print("chat TTFT ms   turn 1   turn 10   turn 10 / turn 1")
    print(f"cache on     {turns_on[0]:>7.1f}  {turns_on[-1]:>8.1f}   {ratio_on:>6.2f}x  (target <= 1.5)")
    print(f"cache off    {turns_off[0]:>7.1f}  {turns_off[-1]:>8.1f}   {ratio_off:>6.2f}x")
    if args.plot:
        plot(args.plot, rates, turns_on, turns_off)
    return 0


def plot(path: Path, rates: dict[int, list[float]], turns_on: list[float], turns_off: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(CLIENTS, [statistics.median(rates[n]) for n in CLIENTS], marker="o")
    left.set(xlabel="concurrent streaming clients", ylabel="aggregate decode tokens/s", xticks=CLIENTS)
    left.set_title("Continuous batching")
    turns = range(1, len(turns_on) + 1)
    right.plot(turns, turns_on, marker="o", label="prompt cache on")
    right.plot(turns, turns_off, marker="o", label="prompt cache off")
    right.set(xlabel="chat turn", ylabel="time to first token (ms)", xticks=list(turns))
    right.set_title("Prompt-cache reuse")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")


if __name__ == "__main__":
    sys.exit(main())
