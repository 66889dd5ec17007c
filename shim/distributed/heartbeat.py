"""Liveness outside the collectives: each follower holds a TCP connection to rank 0 and writes a byte every
BEAT seconds on it. Rank 0 declares the group lost when a connection closes (the follower's process ended:
its kernel closes the socket at once) or stays silent for SILENCE seconds (a host that hangs or drops off
the network). A collective waiting on a dead peer may otherwise block for as long as TCP does."""

from __future__ import annotations

import faulthandler
import logging
import select
import socket
import threading
import time
from collections.abc import Callable

import mlx.core as mx

from shim.distributed.group import leader_host
from shim.distributed.wire import Op, share

log = logging.getLogger("mlx_shim")
BEAT = 0.5  # seconds between a follower's beats
# Seconds without a beat after which rank 0 counts a follower lost: beats come from a Python thread, which a
# follower busy in Python (a big tokenizer loading) may hold up for a few seconds.
SILENCE = 15.0
ORPHAN_EXIT = 10.0  # seconds a follower outlives its connection to rank 0 at most
_CONNECT = 60.0  # seconds rank 0 waits for every follower to connect at start


class Watchdog:
    """Rank 0's side: one thread reading every follower's beats."""

    def __init__(self, conns: dict[int, socket.socket], on_lost: Callable[[str], None]) -> None:
        self._conns = conns
        self._on_lost = on_lost
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mlx-heartbeat", daemon=True)

    @classmethod
    def start(cls, group: mx.distributed.Group, hello: Op, on_lost: Callable[[str], None]) -> Watchdog:
        """Listen on an ephemeral port, tell the followers with the first shared op (`hello` and the port) and
        wait for them all."""
        server = socket.create_server(("", 0), family=socket.AF_INET)
        server.settimeout(_CONNECT)
        share(group, hello | {"op": "hello", "port": server.getsockname()[1]})
        conns: dict[int, socket.socket] = {}
        try:
            while len(conns) < group.size() - 1:
                conn, _ = server.accept()
                conn.settimeout(_CONNECT)
                rank = conn.recv(1)
                if rank:
                    conns[rank[0]] = conn
        except TimeoutError:
            port = server.getsockname()[1]
            raise RuntimeError(
                f"the other ranks did not reach rank 0's heartbeat port {port} in {_CONNECT:g} s"
            ) from None
        finally:
            server.close()
        watchdog = cls(conns, on_lost)
        watchdog._thread.start()
        return watchdog

    def close(self) -> None:
        self._closed.set()
        for conn in self._conns.values():
            conn.close()

    def _watch(self) -> None:
        heard = {rank: time.monotonic() for rank in self._conns}
        by_fd = {conn.fileno(): rank for rank, conn in self._conns.items()}
        while not self._closed.is_set():
            try:
                readable, _, _ = select.select(list(self._conns.values()), [], [], BEAT)
            except (OSError, ValueError):  # closed under it: the server is stopping
                return
            now = time.monotonic()
            for conn in readable:
                rank = by_fd[conn.fileno()]
                try:
                    data = conn.recv(64)
                except OSError:
                    data = b""
                if not data:
                    if not self._closed.is_set():
                        self._on_lost(f"rank {rank} disconnected: its process ended")
                    return
                heard[rank] = now
            for rank, last in heard.items():
                if now - last > SILENCE:
                    self._on_lost(f"rank {rank} sent no heartbeat for {SILENCE:g} s")
                    return


def beat(group: mx.distributed.Group, op: Op) -> None:
    """A follower's side: connect to rank 0 at the port `op` names and beat from a daemon thread. When the
    connection fails rank 0 is gone or stopping: a stop ends the process well within ORPHAN_EXIT seconds;
    otherwise (its collective may wait for good on the dead peer) the process exits with status 1 then."""
    conn = socket.create_connection((leader_host(), int(op["port"])), timeout=_CONNECT)
    conn.sendall(bytes([group.rank()]))

    def run() -> None:
        try:
            while True:
                conn.sendall(b".")
                time.sleep(BEAT)
        except OSError:
            log.info("rank %d: heartbeat to rank 0 ended", group.rank())
        faulthandler.dump_traceback_later(ORPHAN_EXIT, exit=True)  # needs no GIL: a stuck main thread may hold it

    threading.Thread(target=run, name="mlx-heartbeat", daemon=True).start()
