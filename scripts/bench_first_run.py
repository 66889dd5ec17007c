"""A user's first run, measured: fresh MLX_SHIM_HOME -> server answering HTTP -> first real answer from the
embedded `smollm2:135m` (imported from its GGUF in the background on first start), then a clean stop.

Prints seconds to the first HTTP answer, to the import's end (from the server log), to the first chat answer,
the server's peak RSS, the exit code, and the import alone (time and peak RSS of `convert_gguf` in a process
of its own). Exits non-zero if any step fails, so CI can use it as a check:

    python3 scripts/bench_first_run.py --fresh-venv   # what .ci/run does: the README's install, then serve

With --fresh-venv the install part of the README's first command (the first ```sh block, up to
`mlx-shim serve`) runs as written in a new temporary folder, so a runtime dependency missing from
pyproject.toml fails here, not for a user. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is the capital of France?"


def readme_install_command() -> str:
    """The README's first command without its final `&& .venv/bin/mlx-shim serve`."""
    block = re.search(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    if block is None:
        raise SystemExit("README.md has no ```sh block")
    command = block.group(1).strip()
    install, sep, _ = command.rpartition("&& .venv/bin/mlx-shim serve")
    if not sep:
        raise SystemExit(f"the README's first command does not end in `.venv/bin/mlx-shim serve`: {command}")
    return install.strip()


def fresh_install(workdir: Path) -> Path:
    """Run the README's install in a copy of the checkout (so its `.venv` is new) and return its mlx-shim."""
    checkout = workdir / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"))
    command = readme_install_command()
    print(f"install: {command}", flush=True)
    started = time.monotonic()
    subprocess.run(command, shell=True, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    print(f"install: {time.monotonic() - started:.1f} s", flush=True)
    return checkout / ".venv" / "bin" / "mlx-shim"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, object], timeout: float) -> dict[str, object]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident memory so far (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def first_run(mlx_shim: list[str], workdir: Path) -> int:
    port = free_port()
    home = workdir / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("MLX_SHIM_NO_BUILTIN", "MLX_DISABLE_COMPILE")}
    env |= {"OLLAMA_HOST": f"127.0.0.1:{port}", "MLX_SHIM_HOME": str(home)}
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        server = subprocess.Popen([*mlx_shim, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError("the server exited:\n" + log_path.read_text())
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() - started > 120:
                    raise RuntimeError("no HTTP answer in 120 s") from None
                time.sleep(0.1)
        http_s = time.monotonic() - started
        answer = post(
            f"{url}/api/chat",
            {
                "model": "smollm2:135m",
                "messages": [{"role": "user", "content": QUESTION}],
                "stream": False,
                "options": {"temperature": 0, "num_predict": 16},
            },
            timeout=600,
        )
        answer_s = time.monotonic() - started
        rss = peak_rss_mib(server.pid) if sys.platform == "linux" else float("nan")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    log_text = log_path.read_text()
    imported = re.search(r"imported smollm2:135m in ([0-9.]+)s", log_text)
    content = str(answer.get("message", {}).get("content", ""))  # type: ignore[union-attr]
    print(f"first HTTP answer:        {http_s:6.2f} s")
    print(f"import (server log):      {imported.group(1) if imported else '?':>6} s")
    print(f"first chat answer:        {answer_s:6.2f} s  {content!r}")
    print(f"server peak RSS:          {rss:6.0f} MiB")
    print(f"exit code after SIGTERM:  {code}")
    ok = "Paris" in content and code == 0 and "Traceback" not in log_text and "terminate called" not in log_text
    if not ok:
        print(log_text[-4000:], file=sys.stderr)
    return 0 if ok else 1


def import_alone(python: str, workdir: Path) -> None:
    """convert_gguf on the packaged SmolLM2 in a process of its own: time and peak RSS of the import alone."""
    code = (
        "import resource, sys, time; from pathlib import Path; from registry.builtin import builtin_chat_gguf; "
        "from registry.gguf import convert_gguf; t = time.monotonic(); "
        "convert_gguf(builtin_chat_gguf(), Path(sys.argv[1])); "
        "print(f'{time.monotonic() - t:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}')"
    )
    out = subprocess.run([python, "-c", code, str(workdir / "alone")], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    seconds, rss = out.stdout.split()
    size = sum(f.stat().st_size for f in (workdir / "alone").rglob("*") if f.is_file()) / 2**20
    print(f"import alone:             {float(seconds):6.2f} s, peak RSS {rss} MiB, {size:.0f} MiB written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh-venv", action="store_true", help="install as the README says into a new venv first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlx-shim-first-run-") as tmp:
        workdir = Path(tmp)
        if args.fresh_venv:
            mlx_shim = [str(fresh_install(workdir))]
            python = str(Path(mlx_shim[0]).with_name("python"))
        else:
            mlx_shim, python = [sys.executable, "-m", "shim.cli"], sys.executable
        code = first_run(mlx_shim, workdir)
        import_alone(python, workdir)
    return code


if __name__ == "__main__":
    sys.exit(main())
