"""The `mlx-shim` command: `serve` (Hypercorn on OLLAMA_HOST), and the ollama CLI's client commands (create,
show, run, stop, pull, list, ps, cp, rm, --version), which talk to the server over HTTP (shim/commands.py,
`run` in shim/interactive.py). The commands, flags and help pages are declared once, in shim/cli_help.py."""

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
from shim.cli_help import build_parser, check_args, help_for, no_value_flags
from shim.client import Client, ClientError
from shim.config import VERSION, Settings, log_level, no_builtin
from shim.interactive import run_command
from shim.limits import Limits
from shim.mlx_threads import release_mlx_streams

log = logging.getLogger("mlx_shim")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(no_value_flags(sys.argv[1:] if argv is None else argv))
    if extra and (args.command != "run" or any(arg.startswith("-") for arg in extra)):
        parser.error(f"unknown flag: {extra[0]}" if extra[0].startswith("-") else f"unknown arguments: {extra}")
    words = getattr(args, "words", []) + extra  # `run MODEL --think=false Why is the sky blue?`: words after a flag
    if args.command not in (None, "help"):
        if (problem := check_args(args.command, words)) is not None:
            parser.error(problem)
        _name_words(args, words)
    if args.command == "help" or (args.command is None and not args.version):
        sys.stdout.write(help_for(getattr(args, "topic", [])))
        return 0
    if args.command in ("serve", "start"):
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
    if args.command is None:
        commands.version(client, out)
    elif args.command == "create":
        commands.create(client, args.name, Path(args.file) if args.file else None, args.quantize, err)
    elif args.command == "show":
        chosen = [f for f in ("license", "modelfile", "parameters", "system", "template") if getattr(args, f)]
        if len(chosen) > 1:
            raise ClientError(
                "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified"
            )
        commands.show(client, args.name, chosen[0] if chosen else None, args.verbose, out)
    elif args.command == "run":
        run_command(client, args, sys.stdin, out)
    elif args.command == "stop":
        commands.stop(client, args.name)
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


def _name_words(args: argparse.Namespace, words: list[str]) -> None:
    """The positional words under the names the commands use."""
    if args.command == "cp":
        args.source, args.destination = words
    elif args.command in ("rm", "import"):
        args.names = words
    elif args.command in ("list", "ls"):
        args.prefix = words[0] if words else None
    elif words:
        args.name, args.prompt = words[0], words[1:]


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
            leader = Leader(
                group, num_parallel=settings.num_parallel, prefill_group=settings.prefill_group,
                prompt_cache_bytes=settings.prompt_cache_bytes,
            )  # fmt: skip
        except (RuntimeError, OSError) as e:  # a rank gone before the start, or the heartbeat unreachable
            print(f"Error: {e}", file=sys.stderr)
            return 1
    store = Store()
    if leader is not None and (mismatch := leader.check_store(store)) is not None:
        print(f"Error: {mismatch}", file=sys.stderr)
        return 1
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
