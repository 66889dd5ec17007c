"""One process against two over loopback (the README's `mlx.launch --backend ring -n 2` line): decode tokens/s
of one stream and of several concurrent ones on the same model and store, measured one after the other in
this run, and the ratio. A correctness and overhead figure: on one machine the two ranks share its cores and
every token pays collectives over loopback (on an oversubscribed VM the ring backend's busy-polling socket
threads make each cost tens of milliseconds). Speedups need a model split across real Macs.

    python scripts/bench_distributed.py [--model-dir DIR] [--clients 4] [--tokens 64] [--requests 2]

Without --model-dir the tiny model is built first (about a minute).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_concurrency import aggregate_decode, serve  # noqa: E402  (the same clients and server setup)

from tests.conftest import Server, stop_server  # noqa: E402
from tests.test_distributed import launch_group  # noqa: E402  (the README's command, as the tests run it)


def measure(server: Server, clients: int, requests: int, tokens: int) -> tuple[float, float]:
    """Tokens/s of one stream, then of `clients` concurrent streams."""
    return aggregate_decode(server, 1, requests, tokens), aggregate_decode(server, clients, requests, tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2, help="requests per client per measurement")
    parser.add_argument("--tokens", type=int, default=64, help="num_predict of each request")
    args = parser.parse_args()
    model_dir = args.model_dir
    if model_dir is None:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)

    single = serve(model_dir, {})  # registers the model as "m" in a fresh store
    try:
        one = measure(single, args.clients, args.requests, args.tokens)
    finally:
        stop_server(single)
    group = launch_group(single.home)
    try:
        two = measure(Server(group.url, single.home, {}, group.launcher), args.clients, args.requests, args.tokens)
    finally:
        group.stop()
    print(f"{'tokens/s':<28}{'1 process':>12}{'2 processes':>14}{'ratio':>8}")
    for label, a, b in (("one stream", one[0], two[0]), (f"{args.clients} streams", one[1], two[1])):
        print(f"{label:<28}{a:>12.1f}{b:>14.1f}{b / a:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
