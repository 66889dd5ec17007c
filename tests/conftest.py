"""Shared fixtures: one tiny real MLX model per test session, and a real server on a free port.

The server runs as a separate process started the way a user starts it (`mlx-shim serve` with
OLLAMA_HOST), and models are registered through the real `mlx-shim create` command.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.crash_report import allow_core_dumps, native_stacks

ROOT = Path(__file__).resolve().parent.parent

# A cold MLX compile costs 5-9 s per process on the CPU backend; tests do not need fused kernels.
os.environ.setdefault("MLX_DISABLE_COMPILE", "1")

# The Modelfile of the model behind the Ollama v0.24.0 recordings in compat-fixtures/ (its FROM differs).
RECORDED_MODELFILE = '''FROM {path}
TEMPLATE """{{{{ if .System }}}}<|system|>
{{{{ .System }}}}</s>
{{{{ end }}}}{{{{ if .Prompt }}}}<|user|>
{{{{ .Prompt }}}}</s>
{{{{ end }}}}<|assistant|>
{{{{ .Response }}}}</s>
"""
SYSTEM You are a tiny test model.
PARAMETER stop </s>
PARAMETER num_ctx 512
'''


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the trained, 4-bit tiny model once per session (the real builder, seed 0).
    MLX_SHIM_TEST_MODEL_DIR points at an already built one, to iterate faster."""
    if os.environ.get("MLX_SHIM_TEST_MODEL_DIR"):
        return Path(os.environ["MLX_SHIM_TEST_MODEL_DIR"])
    from scripts.tiny_model.build import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_vision_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny trained Gemma 3 vision model (scripts/tiny_model/vision.py), built once per session;
    MLX_SHIM_TEST_VISION_MODEL_DIR points at an already built one."""
    if os.environ.get("MLX_SHIM_TEST_VISION_MODEL_DIR"):
        return Path(os.environ["MLX_SHIM_TEST_VISION_MODEL_DIR"])
    from scripts.tiny_model.vision import build_tiny_vision_model

    return build_tiny_vision_model(tmp_path_factory.mktemp("tiny-vision") / "model", seed=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shim.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


def start_server(
    home: Path, extra_env: dict[str, str] | None = None, bind_host: str = "127.0.0.1", unset: tuple[str, ...] = ()
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "OLLAMA_HOST": f"{bind_host}:{port}",
        "MLX_SHIM_HOME": str(home),
        "MLX_SHIM_NO_BUILTIN": "1",
        "PYTHONFAULTHANDLER": "1",  # a crash in native code (MLX) leaves every thread's Python stack in the log
        **(extra_env or {}),
    }
    for key in unset:  # e.g. MLX_SHIM_NO_BUILTIN: a first start as a user's, with the embedded models
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # it runs in its home
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shim.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
        cwd=home, preexec_fn=allow_core_dumps,  # a crash's core lands in its home, for stop_server's report
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((home / "server.log").read_text())
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return Server(url, home, env, process)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start:\n" + (home / "server.log").read_text())


def stop_server(server: Server) -> None:
    """Stop the server; one that had already died of a signal gets its native stacks in its log and the test
    output (tests/crash_report.py)."""
    died = server.process.poll()
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
    if died is not None and died < 0:
        report = native_stacks(died, server.process.pid, server.home)
        with (server.home / "server.log").open("a") as log:
            log.write(report)
        print(report)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Server]:
    """A server with two models: `tiny` (registered like the recorded Ollama model: Go TEMPLATE,
    SYSTEM, stop, num_ctx 512) and `qwen-tiny` (the model's own chat template, tools and thinking)."""
    home = tmp_path_factory.mktemp("home")
    srv = start_server(home)
    modelfiles = {
        "tiny": RECORDED_MODELFILE.format(path=tiny_model_dir),
        "qwen-tiny": f"FROM {tiny_model_dir}\n",
    }
    for name, text in modelfiles.items():
        path = home / f"{name}.Modelfile"
        path.write_text(text)
        result = cli("create", name, "-f", str(path), env=srv.env)
        assert result.returncode == 0, result.stderr
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def family_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A random-weight model of a family of tests/families.py by name, built once per session."""
    from tests.families import BY_NAME, build_family_model

    root = tmp_path_factory.mktemp("families")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_family_model(BY_NAME[name], root / name)
        return built[name]

    return get
