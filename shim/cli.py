"""The `mlx-shim` command: `serve` (Hypercorn on OLLAMA_HOST) and `create NAME -f Modelfile`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("MLX_SHIM_LOG", "INFO"), format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "serve":
        return _serve(builtin=not args.no_builtin and not os.environ.get("MLX_SHIM_NO_BUILTIN"))
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
    config.include_server_header = False  # Ollama (Go's net/http) sends no Server header
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


if __name__ == "__main__":
    sys.exit(main())
