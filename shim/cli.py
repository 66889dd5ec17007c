"""The `mlx-shim` command: `serve` (Hypercorn on OLLAMA_HOST), `create NAME -f Modelfile`, `ps`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

from registry.builtin import ensure_builtin_model
from registry.local import LocalModelError, create_from_modelfile
from registry.names import InvalidName, ModelName
from registry.store import Store
from shim.config import Settings

log = logging.getLogger("mlx_shim")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlx-shim", description="An Ollama-compatible server for MLX models")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the server on OLLAMA_HOST (default 127.0.0.1:11434)")
    serve.add_argument(
        "--no-builtin",
        action="store_true",
        help="do not build and register the embedded tiny model on first start",
    )
    create = commands.add_parser("create", help="register a local MLX model directory under an Ollama name")
    create.add_argument("name")
    create.add_argument("-f", "--file", default="Modelfile", help="path to the Modelfile (default ./Modelfile)")
    ps = commands.add_parser("ps", help="list running models (GET /api/ps on OLLAMA_HOST)")
    ps.add_argument("model", nargs="?", default="", help="only models whose name starts with this")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("MLX_SHIM_LOG", "INFO"), format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "serve":
        return _serve(builtin=not args.no_builtin and not os.environ.get("MLX_SHIM_NO_BUILTIN"))
    if args.command == "ps":
        return _ps(args.model)
    return _create(args.name, Path(args.file))


def _serve(builtin: bool) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from shim.app import create_app

    # The engine thread holds the GIL while mlx-lm builds each step's graph in Python; the event loop thread
    # that streams tokens would wait up to the default 5 ms switch interval for it. 0.5 ms measured better
    # (scripts/bench_overhead.py: decode ratio about 0.92 against 0.88 on the tiny model).
    sys.setswitchinterval(0.0005)
    settings = Settings()
    store = Store()
    if builtin:
        ensure_builtin_model(store)
    config = Config()
    config.bind = [settings.bind.hypercorn]
    config.accesslog = "-" if os.environ.get("OLLAMA_DEBUG") else None
    config.graceful_timeout = 5
    if not settings.bind.is_loopback:
        log.warning("listening on %s: the API is reachable from other machines", settings.bind.hypercorn)
    log.info("mlx-shim (Ollama API %s) listening on http://%s", "0.24.0", settings.bind.hypercorn)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(create_app(settings, store), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())
    return 0


def _create(name: str, modelfile: Path) -> int:
    try:
        model_name = ModelName.parse(name)
        text = modelfile.read_text()
        stored = create_from_modelfile(Store(), model_name, text, base_dir=modelfile.resolve().parent)
    except InvalidName:
        print("Error: invalid model name", file=sys.stderr)
        return 1
    except (OSError, LocalModelError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(f"created {stored.name.display}")
    return 0


def _ps(prefix: str) -> int:
    """`ollama ps`: the same columns, sizes and times as Ollama's table."""
    import json
    import urllib.error
    import urllib.request
    from datetime import datetime

    bind = Settings().bind
    host = f"[{bind.host}]" if ":" in bind.host else bind.host
    try:
        with urllib.request.urlopen(f"{bind.scheme}://{host}:{bind.port}/api/ps", timeout=30) as resp:
            models = json.load(resp)["models"]
    except (OSError, ValueError, KeyError) as e:
        print(f"Error: could not connect to mlx-shim: {e}", file=sys.stderr)
        return 1
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]
    for m in models:
        if not m["name"].startswith(prefix):
            continue
        size, vram = m["size"], m["size_vram"]
        if vram == 0:
            processor = "100% CPU"
        elif vram == size:
            processor = "100% GPU"
        elif vram > size or size == 0:
            processor = "Unknown"
        else:
            cpu = round((size - vram) / size * 100)
            processor = f"{cpu}%/{100 - cpu}% CPU/GPU"
        expires = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", m["expires_at"]))
        delta = expires.timestamp() - time.time()
        until = "Stopping..." if delta < 0 else _human_time(delta)
        rows.append([m["name"], m["digest"][:12], _human_bytes(size), processor, str(m["context_length"]), until])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("    ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _human_bytes(n: int) -> str:
    """Go's format.HumanBytes (decimal units), as `ollama ps` prints sizes."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            value = n / size
            return f"{int(value)} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def _human_time(seconds_ahead: float) -> str:
    """Go's format.HumanTime for a time in the future."""
    if seconds_ahead / 86400 / 365 > 20:
        return "Forever"
    seconds = int(seconds_ahead)
    minutes = seconds // 60
    hours = round(seconds_ahead / 3600)
    if seconds < 1:
        text = "Less than a second"
    elif seconds < 60:
        text = "1 second" if seconds == 1 else f"{seconds} seconds"
    elif minutes < 60:
        text = "About a minute" if minutes == 1 else f"{minutes} minutes"
    elif hours == 1:
        text = "About an hour"
    elif hours < 48:
        text = f"{hours} hours"
    elif hours < 24 * 14:
        text = f"{hours // 24} days"
    elif hours < 24 * 60:
        text = f"{hours // 24 // 7} weeks"
    elif hours < 24 * 730:
        text = f"{hours // 24 // 30} months"
    else:
        text = f"{seconds // 86400 // 365} years"
    return text + " from now"


if __name__ == "__main__":
    sys.exit(main())
