"""Codex CLI (npm `@openai/codex`) against mlx-shim's /v1/responses: one `codex exec` turn, end to end.

Installs the pinned Codex CLI with npm into ~/.cache/mlx-shim-codex when missing (about 420 MB: its native
binary), starts a server on a free port with the model directory registered as `m`, points Codex at it through
a provider of its own (`wire_api = "responses"`, in a temporary CODEX_HOME, so the user's ~/.codex is never
read or written), runs one turn and checks that it completed with the model's message. A script, not a CI test:
the install is large; tests/test_responses.py runs a real agent (the OpenAI Agents SDK) on every CI run.

    python scripts/e2e_codex.py --model-dir DIR [--prompt "Say hi."]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_concurrency import serve  # noqa: E402  (the same server setup, model registered as `m`)

from tests.conftest import stop_server  # noqa: E402

CODEX = "@openai/codex@0.171.0"
PREFIX = Path.home() / ".cache" / "mlx-shim-codex"


def codex_binary() -> Path:
    binary = PREFIX / "node_modules" / ".bin" / "codex"
    if not binary.exists():
        PREFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), CODEX], check=True)
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--prompt", default="Say hi.")
    args = parser.parse_args()
    binary = codex_binary()
    server = serve(args.model_dir, {})
    try:
        home = Path(tempfile.mkdtemp(prefix="codex-home-"))
        (home / "config.toml").write_text(
            'model = "m"\nmodel_provider = "mlx-shim"\n\n[model_providers.mlx-shim]\nname = "mlx-shim"\n'
            f'base_url = "{server.url}/v1"\nwire_api = "responses"\n'
        )
        started = time.perf_counter()
        run = subprocess.run(
            [str(binary), "exec", "--skip-git-repo-check", "--json", args.prompt],
            capture_output=True, text=True, env={**os.environ, "CODEX_HOME": str(home)}, cwd=home,
            stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        kinds = [e["type"] for e in events]
        messages = [e["item"]["text"] for e in events if e.get("item", {}).get("type") == "agent_message"]
        log = (server.home / "server.log").read_text()
        requests = log.count('"/v1/responses"')
        print(f"codex exit {run.returncode} in {seconds:.1f} s; {requests} request(s) to /v1/responses; events {kinds}")
        print(f"message: {messages[-1] if messages else None!r}")
        ok = run.returncode == 0 and "turn.completed" in kinds and bool(messages) and requests > 0
        if not ok:
            print(run.stderr[-3000:])
        return 0 if ok else 1
    finally:
        stop_server(server)


if __name__ == "__main__":
    sys.exit(main())
