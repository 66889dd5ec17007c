"""The servers under test, started as users start them: `python -m shim.cli serve` (mlx-shim, with its model
registered by `python -m shim.cli create -f Modelfile`) and `python -m mlx_lm.server`. Both run with this
interpreter and environment (PYTHONPATH=. is enough; the project need not be installed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "bench"


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(server: Server, path: str, timeout: float) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    stop(server)
    raise RuntimeError(f"{server.name} did not start in {timeout:.0f} s:\n{server.log.read_text()[-4000:]}")


def start_mlx_shim(
    name: str, home: Path, model_dir: Path, parallel: int | None, tree: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Server:  # fmt: skip
    """mlx-shim on a free port; `parallel` None leaves OLLAMA_NUM_PARALLEL unset (the server's default); `tree`
    runs the code of another checkout (PYTHONPATH=. then names it); `extra_env` adds settings. Servers may share
    `home`: the model is created once, by the first (create is skipped when it exists)."""
    port = _free_port()
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "MLX_SHIM_HOME": str(home), "MLX_SHIM_NO_BUILTIN": "1",
           "OLLAMA_KEEP_ALIVE": "-1"}  # fmt: skip
    env.pop("OLLAMA_NUM_PARALLEL", None)
    if parallel is not None:
        env["OLLAMA_NUM_PARALLEL"] = str(parallel)
    env.update(extra_env or {})
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"{name}.log"
    cmd = [sys.executable, "-m", "shim.cli", "serve"]
    process = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=tree)
    server = _wait_ready(Server(name, f"http://127.0.0.1:{port}", process, log), "/", 120)
    modelfile = home / "Modelfile"
    if not modelfile.exists():
        modelfile.write_text(f"FROM {model_dir}\n")
        create = [sys.executable, "-m", "shim.cli", "create", MODEL_NAME, "-f", str(modelfile)]
        result = subprocess.run(create, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            stop(server)
            raise RuntimeError(f"mlx-shim create failed:\n{result.stdout}\n{result.stderr}")
    return server


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User + system CPU time of a running process so far: all its threads, and its main thread alone (an
    mlx-shim's event loop; MLX runs on other threads). Linux /proc; None elsewhere."""
    try:
        every = Path(f"/proc/{pid}/stat").read_text()
        main = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    except OSError:
        return None
    return _stat_seconds(every), _stat_seconds(main)


def _stat_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()  # from field 3 (state) on: utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_mlx_lm_server(home: Path, model_dir: Path) -> Server:
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "mlx_lm.server.log"
    cmd = [sys.executable, "-m", "mlx_lm.server", "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return _wait_ready(Server("mlx_lm.server", f"http://127.0.0.1:{port}", process, log), "/health", 300)


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
