"""The server stops cleanly: SIGTERM and SIGINT exit 0 with no traceback, with MLX compile on, after
generations and with a stream still running. MLX 0.32 aborts the process at exit ("terminate called without an
active exception", exit 134) when a thread that ran MLX work ends with its streams alive (ml-explore/mlx#4327):
before the fix, 4 of 4 stops after one generation aborted here."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import cli, start_server
from tests.drain_streams import InFlight

LONG_PROMPT = "the quick brown fox jumps over the lazy dog. " * 500  # a prefill long enough to stop during it


def _stop(process: object, sig: signal.Signals) -> int:
    process.send_signal(sig)  # type: ignore[attr-defined]
    return int(process.wait(timeout=30))  # type: ignore[attr-defined]


def test_stops_exit_zero_with_compile_on(tmp_path: Path, tiny_model_dir: Path) -> None:
    codes, logs = [], []
    for round_ in range(8):
        home = tmp_path / f"home{round_}"
        home.mkdir()
        srv = start_server(home, unset=("MLX_DISABLE_COMPILE",))
        if round_ == 0:
            (tmp_path / "Modelfile").write_text(f"FROM {tiny_model_dir}\n")
        assert cli("create", "tiny", "-f", str(tmp_path / "Modelfile"), env=srv.env).returncode == 0
        body = {"model": "tiny", "prompt": "Hello", "options": {"num_predict": 8}, "stream": False}
        assert httpx.post(f"{srv.url}/api/generate", json=body, timeout=60).status_code == 200
        in_flight = None
        if round_ % 2:  # every other stop lands while a long request is still streaming
            body = {"model": "tiny", "raw": True, "prompt": LONG_PROMPT, "options": {"num_predict": 100000}}
            started = threading.Event()

            def stream(url: str = srv.url, body: dict[str, object] = body, started: threading.Event = started) -> None:
                try:
                    with httpx.stream("POST", f"{url}/api/generate", json=body, timeout=60) as response:
                        started.set()
                        for _ in response.iter_lines():
                            pass
                except httpx.HTTPError:
                    pass  # the server went away mid-answer: what this round is about

            in_flight = threading.Thread(target=stream)
            in_flight.start()
            assert started.wait(30)
        codes.append(_stop(srv.process, signal.SIGTERM if round_ < 4 else signal.SIGINT))
        if in_flight is not None:
            in_flight.join(timeout=30)
        logs.append((home / "server.log").read_text())
    assert codes == [0] * 8, codes
    for log in logs:
        assert "Traceback" not in log and "terminate called" not in log, log


def test_a_stop_drains_running_streams_with_their_protocols_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    """SIGTERM with a stream of each protocol running and one request queued: after the grace period each
    running stream ends with its protocol's error line or event, the queued request gets a 503 error body, and
    the server exits 0 having said it is stopping."""
    srv = start_server(tmp_path, {"MLX_SHIM_DRAIN_SECONDS": "1"}, unset=("MLX_DISABLE_COMPILE",))
    (tmp_path / "Modelfile").write_text(f"FROM {tiny_model_dir}\n")
    assert cli("create", "tiny", "-f", str(tmp_path / "Modelfile"), env=srv.env).returncode == 0
    streams = InFlight(srv.url)
    assert streams.wait_started()
    time.sleep(0.5)  # the queued request reaches the engine's queue
    started = time.monotonic()
    assert _stop(srv.process, signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    streams.join()
    assert streams.problems() == []
    log = (tmp_path / "server.log").read_text()
    assert re.search(r"stopping: no new connections; [45] requests running get 1 s to finish", log), log
    assert "Traceback" not in log and "client disconnected" not in log, log
