"""How many stops with streams in flight are clean? Each round starts a server (MLX compile on, as users run it),
starts a stream of each protocol and queues one more request, sends SIGTERM (SIGINT every other round), and
counts the stop clean when the server exits 0 with no traceback, every running stream ends with its protocol's
"server is shutting down" error and the queued request gets a 503 error body (tests/drain_streams.py).

    python scripts/drain_stops.py [--stops 20] [--model-dir DIR]

Without --model-dir, MLX_SHIM_TEST_MODEL_DIR or a freshly built tiny model (about a minute) is used.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.pop("MLX_DISABLE_COMPILE", None)  # compile on, whatever the caller's environment says

from tests.conftest import cli, start_server  # noqa: E402  (the same server the tests start)
from tests.drain_streams import InFlight  # noqa: E402


def one_stop(model_dir: Path, home: Path, sig: signal.Signals) -> list[str]:
    """What went wrong in one stop ([] for a clean one)."""
    server = start_server(home, {"MLX_SHIM_DRAIN_SECONDS": "1"})
    try:
        (home / "Modelfile").write_text(f"FROM {model_dir}\n")
        created = cli("create", "tiny", "-f", str(home / "Modelfile"), env=server.env)
        if created.returncode != 0:
            return [f"create failed: {created.stderr}"]
        streams = InFlight(server.url)
        if not streams.wait_started():
            return ["the streams did not start"]
        time.sleep(0.5)
        server.process.send_signal(sig)
        code = server.process.wait(timeout=60)
        streams.join()
    finally:
        if server.process.poll() is None:
            server.process.kill()
    problems = streams.problems()
    log = (home / "server.log").read_text()
    if code != 0:
        problems.append(f"exit code {code}")
    if "Traceback" in log or "terminate called" in log:
        problems.append("a traceback in the log")
    if "stopping: no new connections" not in log:
        problems.append("the log does not say the server is stopping")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument("--model-dir", type=Path, default=os.environ.get("MLX_SHIM_TEST_MODEL_DIR"))
    args = parser.parse_args()
    model_dir = args.model_dir
    if model_dir is None:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)
    clean = 0
    started = time.perf_counter()
    for i in range(args.stops):
        sig = signal.SIGTERM if i % 2 == 0 else signal.SIGINT
        problems = one_stop(Path(model_dir), Path(tempfile.mkdtemp(prefix="drain-stop-")), sig)
        clean += not problems
        print(f"stop {i + 1:2d} ({sig.name}): {'clean' if not problems else '; '.join(problems)}", flush=True)
    print(f"{clean} of {args.stops} stops clean ({time.perf_counter() - started:.0f} s)")
    return 0 if clean == args.stops else 1


if __name__ == "__main__":
    sys.exit(main())
