"""One process against two and four over loopback (the README's `mlx.launch --backend ring -n 2` line, and the
same with `-n 4`): decode tokens/s of one stream and of several concurrent ones on the same model and store,
measured one after the other in this run, and the ratios. A correctness and overhead figure: on one machine
the ranks share its cores and every token pays collectives over loopback (on an oversubscribed VM the ring
backend's busy-polling socket threads make each cost tens of milliseconds). Speedups need a model split
across real Macs.

    python scripts/bench_distributed.py [--model-dir DIR] [--random] [--pipeline] [--ranks 2 ...]
                                        [--clients 4] [--tokens 64] [--requests 2]

Without --model-dir the tiny model is built first (about a minute). Its 2 key-value heads and 2 layers split
2 ways only: --random benches the tests' random-weight ministral3 instead (4 key-value heads, 4 layers, the
model directory's tokenizer), which splits 4 ways either way; --pipeline splits by layers (MLX_SHIM_PIPELINE).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_concurrency import aggregate_decode, serve  # noqa: E402  (the same clients and server setup)

from tests.conftest import Server, stop_server  # noqa: E402
from tests.test_distributed import launch_group  # noqa: E402  (the README's command, as the tests run it)
from tests.test_distributed_scale import MINISTRAL3  # noqa: E402
from tests.test_distributed_units import random_model  # noqa: E402


def measure(server: Server, clients: int, requests: int, tokens: int) -> tuple[float, float]:
    """Tokens/s of one stream, then of `clients` concurrent streams."""
    return aggregate_decode(server, 1, requests, tokens), aggregate_decode(server, clients, requests, tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--random", action="store_true", help="bench the random ministral3 (splits 4 ways)")
    parser.add_argument("--pipeline", action="store_true", help="split by layers (MLX_SHIM_PIPELINE=1)")
    parser.add_argument("--ranks", type=int, nargs="+", help="group sizes (default 2, and 4 with --random)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2, help="requests per client per measurement")
    parser.add_argument("--tokens", type=int, default=64, help="num_predict of each request")
    args = parser.parse_args()
    model_dir = args.model_dir
    if model_dir is None:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)
    if args.random:
        model_dir = random_model(Path(tempfile.mkdtemp()) / "ministral3", MINISTRAL3, model_dir, seed=3)

    single = serve(model_dir, {})  # registers the model as "m" in a fresh store
    try:
        rows = {"1 process": measure(single, args.clients, args.requests, args.tokens)}
    finally:
        stop_server(single)
    env = {"MLX_SHIM_PIPELINE": "1"} if args.pipeline else {}
    for ranks in args.ranks or ([2, 4] if args.random else [2]):
        group = launch_group(single.home, ranks, env)
        try:
            rows[f"{ranks} processes"] = measure(
                Server(group.url, single.home, {}, group.launcher), args.clients, args.requests, args.tokens
            )
            (loaded,) = httpx.get(f"{group.url}/api/ps").json()["models"]
            print(f"{ranks} processes: {loaded['split']['parallelism']} parallel")
        finally:
            group.stop()
    one = rows["1 process"]
    print(f"{'tokens/s':<16}" + "".join(f"{label:>14}{'ratio':>8}" for label in rows))
    for i, label in enumerate(("one stream", f"{args.clients} streams")):
        print(f"{label:<16}" + "".join(f"{row[i]:>14.1f}{row[i] / one[i]:>8.2f}" for row in rows.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
