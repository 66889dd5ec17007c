"""The `mlx-shim` command: `serve` (Hypercorn on OLLAMA_HOST), and the ollama CLI's client commands
(create, show, run, pull, list, ps, cp, rm), which talk to the server over HTTP (shim/commands.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import signal
import socket
import sys
from pathlib import Path

from registry.builtin import ensure_builtin_embedding_model, start_builtin_chat_model
from registry.create import prune_unreferenced
from registry.store import Store
from shim import commands
from shim.client import Client, ClientError
from shim.config import VERSION, Settings, log_level, no_builtin
from shim.limits import Limits
from shim.mlx_threads import release_mlx_streams

log = logging.getLogger("mlx_shim")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlx-shim", description="An Ollama-compatible server for MLX models")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the server on OLLAMA_HOST (default 127.0.0.1:11434)")
    serve.add_argument(
        "--no-builtin",
        action="store_true",
        help="do not register the embedded models (smollm2:135m, all-minilm) on first start",
    )
    create = commands.add_parser(
        "create", help="create a model from a Modelfile (FROM an MLX directory, a GGUF file or a model)"
    )
    create.add_argument("name")
    create.add_argument("-f", "--file", default="Modelfile", help="path to the Modelfile (default ./Modelfile)")
    create.add_argument(
        "-q", "--quantize", help="quantize the model (Q4_K_M, Q4_K_S, Q8_0, int4, int8, mxfp4, nvfp4, mxfp8, F16, ...)"
    )
    show = commands.add_parser("show", help="show information for a model")
    show.add_argument("name")
    fields = show.add_argument_group("show one field only")
    for field in ("license", "modelfile", "parameters", "system", "template"):
        fields.add_argument(f"--{field}", action="store_true", help=f"show the model's {field}")
    show.add_argument("-v", "--verbose", action="store_true", help="show all metadata and tensors")
    run = commands.add_parser("run", help="chat with a model: one prompt, or a conversation from stdin")
    run.add_argument("name")
    run.add_argument("prompt", nargs="*")
    run.add_argument("--think", nargs="?", const="true", help="enable thinking (true, false, high, medium, low)")
    run.add_argument("--hidethinking", action="store_true", help="hide the thinking output")
    commands.add_parser("pull", help="pull a model").add_argument("name")
    imports = commands.add_parser(
        "import", help="import models from the server's Ollama library (OLLAMA_MODELS), all of them without names"
    )
    imports.add_argument("names", nargs="*", metavar="NAME")
    listing = commands.add_parser("list", aliases=["ls"], help="list models")
    listing.add_argument("prefix", nargs="?")
    commands.add_parser("ps", help="list running models")
    cp = commands.add_parser("cp", help="copy a model")
    cp.add_argument("source")
    cp.add_argument("destination")
    commands.add_parser("rm", help="remove models").add_argument("names", nargs="+")
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "run" or any(arg.startswith("-") for arg in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:  # `run MODEL --think=false Why is the sky blue?`: words after an option are the prompt too
        args.prompt += extra

    if args.command == "serve":
        logging.basicConfig(level=log_level(), format="%(asctime)s %(levelname)s %(message)s")
        return _serve(builtin=not args.no_builtin and not no_builtin())
    try:
        _client_command(args)
    except ClientError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _client_command(args: argparse.Namespace) -> None:
    client = Client()
    out, err = sys.stdout, sys.stderr
    if args.command == "create":
        commands.create(client, args.name, Path(args.file), args.quantize, err)
    elif args.command == "show":
        chosen = [f for f in ("license", "modelfile", "parameters", "system", "template") if getattr(args, f)]
        if len(chosen) > 1:
            raise ClientError(
                "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified"
            )
        commands.show(client, args.name, chosen[0] if chosen else None, args.verbose, out)
    elif args.command == "run":
        think = {"true": True, "false": False}.get(args.think, args.think)
        prompt = " ".join(args.prompt) if args.prompt else None
        commands.run(client, args.name, prompt, think=think, hide_thinking=args.hidethinking, stdin=sys.stdin, out=out)
    elif args.command == "pull":
        commands.pull(client, args.name, err)
    elif args.command == "import":
        commands.import_models(client, args.names, err)
    elif args.command in ("list", "ls"):
        commands.list_models(client, args.prefix, out)
    elif args.command == "ps":
        commands.list_running(client, out)
    elif args.command == "cp":
        commands.copy(client, args.source, args.destination, out)
    elif args.command == "rm":
        commands.remove(client, args.names, out)


def _serve(builtin: bool) -> int:
    if (missing := _missing_mlx_backend()) is not None:
        print(f"Error: {missing}", file=sys.stderr)
        return 1
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from shim.app import create_app
    from shim.distributed.group import launched_group
    from shim.drain import Drain

    group = launched_group()  # None unless started by mlx.launch: then rank 0 serves, the others follow it
    if group is not None and group.rank() > 0:
        from shim.distributed.follower import follow

        return follow(group)

    # The engine thread holds the GIL while mlx-lm builds each step's graph in Python; the event loop thread
    # that streams tokens would wait up to the default 5 ms switch interval for it. 0.5 ms measured better
    # (scripts/bench_overhead.py: decode ratio about 0.92 against 0.88 on the tiny model).
    sys.setswitchinterval(0.0005)
    settings = Settings()
    try:  # before anything touches the store: a second server started by mistake must not prune the first's
        listener = _listen(settings.bind.hypercorn)
    except OSError as e:
        print(f"Error: listen tcp {settings.bind.hypercorn}: bind: {(e.strerror or str(e)).lower()}", file=sys.stderr)
        return 1
    leader = None
    if group is not None:
        from shim.distributed.leader import Leader

        try:
            leader = Leader(group, num_parallel=settings.num_parallel, prompt_cache_bytes=settings.prompt_cache_bytes)
        except (RuntimeError, OSError) as e:  # a rank gone before the start, or the heartbeat unreachable
            print(f"Error: {e}", file=sys.stderr)
            return 1
    store = Store()
    if builtin:
        ensure_builtin_embedding_model(store)
    for path in prune_unreferenced(store):
        log.info("removed unused %s", path)
    if builtin:
        start_builtin_chat_model(store)
    limits = Limits()
    _raise_open_file_limit()
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None  # shim/access_log.py writes the line a request
    config.errorlog = logging.getLogger("hypercorn.error")  # our handler and format: each line once
    config.graceful_timeout = limits.drain_seconds + 10  # the drain ends what runs; then its errors are written
    config.keep_alive_timeout = limits.keep_alive_seconds
    config.h11_max_incomplete_size = limits.max_header_bytes
    config.backlog = limits.backlog
    config.include_server_header = False  # Ollama (Go's net/http) sends no Server header
    if not settings.bind.is_loopback:
        log.warning("listening on %s: the API is reachable from other machines", settings.bind.hypercorn)
    log.info("mlx-shim (Ollama API %s) listening on http://%s", VERSION, settings.bind.hypercorn)

    async def run() -> None:
        app = create_app(settings, store, limits, lockstep=leader)
        drain = Drain(app.state.engine, app.state.counters, limits.drain_seconds)
        loop = asyncio.get_running_loop()
        if leader is not None:  # a lost rank stops the server as a signal would

            def stop_serving() -> None:
                loop.call_soon_threadsafe(drain.begin)

            leader.on_lost = stop_serving
        loop.set_exception_handler(_ignore_cancelled_connections)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, drain.begin)
        await serve(app, config, shutdown_trigger=drain.stop.wait)  # type: ignore[arg-type]
        log.info("stopped")

    try:
        asyncio.run(run())
    finally:
        if leader is not None:
            leader.close()
        release_mlx_streams()  # the main thread too: MLX aborts at exit otherwise
    return 1 if leader is not None and leader.lost else 0


def _raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard one, as Go's runtime does at start (Go 1.19+): each
    connection is a file, and an inherited soft limit (often 1,024) turns a burst of clients into accept() errors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as e:
            log.warning("could not raise the open file limit from %d: %s", soft, e)


def _ignore_cancelled_connections(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """At shutdown hypercorn cancels each open connection's task, and asyncio's stream callback (Python 3.11)
    reports every cancelled one as an error with a 25-line CancelledError traceback: a normal stop, not a fault."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _missing_mlx_backend() -> str | None:
    """Why MLX cannot run here, said as what to install; None when it can. On Linux `mlx-lm` alone brings no
    MLX (its metadata asks for it on macOS only), so a plain `pip install -e .` would end in a traceback."""
    try:
        import mlx.core  # noqa: F401
    except ImportError as e:
        extra = "'.[cuda]' for an NVIDIA GPU, or '.[cpu]'" if sys.platform == "linux" else "'.'"
        return f"MLX is not installed or has no backend here ({e}): install mlx-shim with pip install -e {extra}"
    return None


def _listen(address: str) -> socket.socket:
    """The socket hypercorn would bind for `address` (its options), bound here so that a busy port is
    found first, as `ollama serve` listens before it prunes."""
    host, port = address.replace("[", "").replace("]", "").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError:
        sock.close()
        raise
    return sock


if __name__ == "__main__":
    sys.exit(main())
