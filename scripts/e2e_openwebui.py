"""Open WebUI, the real one from PyPI, against mlx-shim in headless Chromium: the model picker, a streamed chat
that finishes, the saved chat after a reload, a second turn, tool calling in both of Open WebUI's modes
with its built-in web search tool, and an image uploaded in the chat whose colour the answer names. A
script, not a CI test: it prints each step with its time and PASS/FAIL, saves a screenshot per step, and
exits 1 when a step failed.

    python scripts/e2e_openwebui.py [--url URL] [--venv DIR] [--out DIR] [--model-dir DIR]

- Open WebUI (`open-webui`, the current release, ~7 GB with its torch) and `playwright` are installed into
  --venv (default ~/.cache/mlx-shim-openwebui/venv) when missing: minutes, once. The browser is Debian's
  `chromium` (`apt-get install -y chromium`, run here when missing and root), never a Playwright download.
- Without --url an mlx-shim server is started on loopback in a temporary home: the embedded `smollm2:135m`
  answers the chat steps (real text) and the tiny trained model (--model-dir, MLX_SHIM_TEST_MODEL_DIR or a
  fresh build) is created as `tiny` for the tool steps: it was trained to call a `search_web` tool, which is
  Open WebUI's built-in web search tool's name, which SmolLM2-135M is too small to call reliably. The
  tiny trained vision model (--vision-dir, MLX_SHIM_TEST_VISION_MODEL_DIR or a fresh build) is created as
  `tiny-vision` for the image step: it names the colour of a solid-colour image.
- Open WebUI runs offline with auth off: no hub downloads (OFFLINE_MODE, HF_HUB_OFFLINE, embeddings through
  mlx-shim's `all-minilm`), no title/tag/follow-up tasks (each a further generation on a 2-core box), web
  search through a stub SearXNG on loopback that returns one fixed result for any query.

Function-calling modes, as Open WebUI 0.12 names them: "native" (its default since 0.10: the tools go to
`/api/chat` and the model calls them) and "legacy" (the former "default": Open WebUI itself asks the model for
search queries, runs the search and puts the results into the prompt; built-in tools are native-only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server, cli, free_port, start_server, stop_server  # noqa: E402  (the tests' server)

T = TypeVar("T")

DEFAULT_VENV = Path.home() / ".cache" / "mlx-shim-openwebui" / "venv"
SEARCH_RESULT = {"url": "https://www.python.org/", "title": "Welcome to Python.org",
                 "content": "The official home of the Python Programming Language.", "score": 1.0}  # fmt: skip


def timed(label: str, action: Callable[..., T], *args: object) -> T:
    started = time.monotonic()
    result = action(*args)
    print(f"PASS  {label:<16} {time.monotonic() - started:6.1f} s", flush=True)
    return result


def ensure_venv(venv: Path) -> None:
    """Open WebUI 0.12 needs Python 3.11 or 3.12; the interpreter running this script is one of them."""
    if (venv / "bin" / "open-webui").exists() and (venv / "bin" / "playwright").exists():
        return
    print(f"installing open-webui and playwright into {venv} (~7 GB, minutes)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "open-webui", "playwright"], check=True)


def ensure_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True)
        found = shutil.which("chromium")
    if found is None:
        raise SystemExit("no chromium: install Debian's (apt-get install -y chromium)")
    return found


def start_search_stub() -> tuple[ThreadingHTTPServer, str]:
    """SearXNG's JSON answer, one fixed result: the web in a machine with no internet."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"results": [SEARCH_RESULT]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/search"


def start_shim(home: Path, model_dir: Path, vision_dir: Path) -> Server:
    server = start_server(home, unset=("MLX_SHIM_NO_BUILTIN",))  # the embedded smollm2:135m and all-minilm
    for name, source in (("tiny", model_dir), ("tiny-vision", vision_dir)):
        (home / f"{name}.Modelfile").write_text(f"FROM {source}\n")
        created = cli("create", name, "-f", str(home / f"{name}.Modelfile"), env=server.env)
        if created.returncode != 0:
            stop_server(server)
            raise SystemExit(created.stderr)
    # the first start imports SmolLM2 in the background: a chat waits for it, so load it now, off the clock
    httpx.post(f"{server.url}/api/generate", json={"model": "smollm2:135m"}, timeout=300).raise_for_status()
    return server


def webui_env(shim_url: str, data_dir: Path, search_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "WEBUI_AUTH": "False",
        "WEBUI_SECRET_KEY": "mlx-shim-e2e",
        "OLLAMA_BASE_URL": shim_url,
        "ENABLE_OPENAI_API": "False",
        "OFFLINE_MODE": "True",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RAG_EMBEDDING_ENGINE": "ollama",
        "RAG_EMBEDDING_MODEL": "all-minilm",
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
        "RAG_RERANKING_MODEL_AUTO_UPDATE": "False",
        "WHISPER_MODEL_AUTO_UPDATE": "False",
        "ENABLE_VERSION_UPDATE_CHECK": "False",
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "True",
        "SCARF_NO_ANALYTICS": "true",
        "ENABLE_TITLE_GENERATION": "False",
        "ENABLE_TAGS_GENERATION": "False",
        "ENABLE_FOLLOW_UP_GENERATION": "False",
        "ENABLE_AUTOCOMPLETE_GENERATION": "False",
        "ENABLE_WEB_SEARCH": "True",
        "WEB_SEARCH_ENGINE": "searxng",
        "SEARXNG_QUERY_URL": search_url,
        "BYPASS_WEB_SEARCH_WEB_LOADER": "True",
        "BYPASS_WEB_SEARCH_EMBEDDING_AND_RETRIEVAL": "True",
    }


def start_webui(venv: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(venv / "bin" / "open-webui"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"Open WebUI exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.kill()
    raise SystemExit(f"Open WebUI did not answer /health within 600 s:\n{log.read_text()[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running mlx-shim (with --chat-model, --tool-model and --vision-model)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"Open WebUI's venv (default {DEFAULT_VENV})")
    parser.add_argument("--out", type=Path, default=Path("e2e-openwebui"), help="screenshots and logs")
    parser.add_argument("--model-dir", type=Path, help="the tiny model (default MLX_SHIM_TEST_MODEL_DIR or a build)")
    parser.add_argument("--vision-dir", type=Path, help="the tiny vision model (or a build)")
    parser.add_argument("--chat-model", default="smollm2:135m")
    parser.add_argument("--tool-model", default="tiny:latest")
    parser.add_argument("--vision-model", default="tiny-vision:latest")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    timed("venv", ensure_venv, args.venv)
    chromium = timed("chromium", ensure_chromium)
    work = Path(tempfile.mkdtemp(prefix="mlx-shim-openwebui-"))
    shim = webui = search = None
    try:
        url = args.url
        if url is None:
            model_dir = args.model_dir or os.environ.get("MLX_SHIM_TEST_MODEL_DIR")
            if model_dir is None:
                from scripts.tiny_model.build import build_tiny_model

                model_dir = timed("tiny-model", build_tiny_model, work / "tiny", 0)
            vision_dir = args.vision_dir or os.environ.get("MLX_SHIM_TEST_VISION_MODEL_DIR")
            if vision_dir is None:
                from scripts.tiny_model.vision import build_tiny_vision_model

                vision_dir = timed("tiny-vision", build_tiny_vision_model, work / "tiny-vision", 0)
            (work / "home").mkdir()
            shim = timed("mlx-shim", start_shim, work / "home", Path(model_dir), Path(vision_dir))
            url = shim.url
        search, search_url = start_search_stub()
        env = webui_env(url, work / "data", search_url)
        webui, webui_url = timed("open-webui", start_webui, args.venv, env, args.out / "open-webui.log")
        browser = [str(args.venv / "bin" / "python"), str(ROOT / "scripts" / "openwebui_browser.py"),
                   "--webui", webui_url, "--out", str(args.out), "--chromium", chromium,
                   "--chat-model", args.chat_model, "--tool-model", args.tool_model,
                   "--vision-model", args.vision_model]  # fmt: skip
        code = subprocess.run(browser).returncode
    finally:
        if webui is not None:
            webui.terminate()
            webui.wait(timeout=30)
        if search is not None:
            search.shutdown()
        if shim is not None:
            stop_server(shim)
            shutil.copy(shim.home / "server.log", args.out / "mlx-shim.log")
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'PASS' if code == 0 else 'FAIL'}: end to end in {time.monotonic() - started:.0f} s; "
          f"screenshots and logs in {args.out}/", flush=True)  # fmt: skip
    return code


if __name__ == "__main__":
    sys.exit(main())
