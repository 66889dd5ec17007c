"""Serving one model from two processes over MLX's ring backend on loopback, launched by the README's own
`mlx.launch` line: the `ollama` client's chats get exactly what one process answers (greedy, the trained tiny
model), streamed and two at once; /api/ps shows the split; what cannot run in lockstep is refused; a follower
that dies makes rank 0 answer 503 and stop.

The group runs the worktree's code: PYTHONPATH puts it first, PATH this interpreter's `mlx-shim`."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.conftest import RECORDED_MODELFILE, ROOT, Server, cli, free_port, start_server, stop_server

# The last prompt's admission is longer than the plan's first sum carries: it takes the second.
PROMPTS = ["Hello!", "Tell me a story.", "What is 2+2?", "Who are you? " * 60]
OPTIONS = {"temperature": 0, "num_predict": 12}
LOST = "the distributed model server lost a rank"

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the follower's pid in /proc")


def launch_line() -> str:
    """The README's one-machine command: the single line of its scale-out section that starts with mlx.launch
    and has no --hosts or --hostfile."""
    lines = re.findall(r"^mlx\.launch .*$", (ROOT / "README.md").read_text(), re.MULTILINE)
    local = [line for line in lines if "mlx-shim serve" in line and "--host" not in line]
    assert len(local) == 1, lines
    return local[0]


def chat(url: str, prompt: str, stream: bool = False) -> str:
    client = ollama.Client(host=url, timeout=120)
    messages = [{"role": "user", "content": prompt}]
    if stream:
        return "".join(
            part.message.content or "" for part in client.chat("tiny", messages, stream=True, options=OPTIONS)
        )
    return client.chat("tiny", messages, options=OPTIONS).message.content or ""


class Group:
    def __init__(self, url: str, launcher: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.launcher = launcher
        self.log = log

    def ranks(self) -> dict[int, int]:
        """rank -> pid of the launcher's children (each is bash exec'ing `mlx-shim serve`)."""
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != self.launcher.pid:
                    continue
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError):
                continue
            for entry in environ:
                if entry.startswith(b"MLX_RANK="):
                    found[int(entry[9:])] = int(stat.parent.name)
        return found

    def stop(self) -> None:
        for pid in self.ranks().values():  # the launcher's own stop does not reach its children
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.launcher.kill()
        self.launcher.wait(timeout=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """One process's answers to PROMPTS, and the home whose store has `tiny` in it."""
    home = tmp_path_factory.mktemp("home")
    server: Server = start_server(home)
    try:
        path = home / "tiny.Modelfile"
        path.write_text(RECORDED_MODELFILE.format(path=tiny_model_dir))
        assert cli("create", "tiny", "-f", str(path), env=server.env).returncode == 0
        answers = {prompt: chat(server.url, prompt) for prompt in PROMPTS}
    finally:
        stop_server(server)
    yield home, answers


def start_group(home: Path, ranks: int = 2, env: dict[str, str] | None = None, command: str = "") -> Group:
    """The README's one-machine command, with `ranks` processes (and `command` after its `--` instead of
    `mlx-shim serve` when given), on a free port over `home`'s store; each process's BLAS keeps to one thread."""
    port = free_port()
    full_env = {
        **os.environ,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "MLX_SHIM_HOME": str(home),
        "MLX_SHIM_NO_BUILTIN": "1",
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }
    line = launch_line().replace(" -n 2 ", f" -n {ranks} ")
    argv = shlex.split(line)
    if command:
        argv = [*argv[: argv.index("--") + 1], *shlex.split(command)]
    log = home / f"group-{port}.log"
    with log.open("wb") as out:
        launcher = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Group(f"http://127.0.0.1:{port}", launcher, log)


def launch_group(home: Path, ranks: int = 2, env: dict[str, str] | None = None) -> Group:
    """`start_group`, once rank 0 answers HTTP."""
    started = start_group(home, ranks, env)
    launcher, log = started.launcher, started.log
    deadline = time.monotonic() + 120
    while True:
        if launcher.poll() is not None or time.monotonic() > deadline:
            started.stop()
            raise RuntimeError("the group did not start:\n" + log.read_text())
        try:
            if httpx.get(started.url, timeout=1).status_code == 200:
                return started
        except httpx.HTTPError:
            time.sleep(0.3)


@pytest.fixture(scope="module")
def group(reference: tuple[Path, dict[str, str]]) -> Iterator[Group]:
    started = launch_group(reference[0])
    try:
        yield started
    finally:
        started.stop()


def test_chats_match_one_process(group: Group, reference: tuple[Path, dict[str, str]]) -> None:
    answers = reference[1]
    assert all(answers.values())
    assert chat(group.url, PROMPTS[0]) == answers[PROMPTS[0]]
    assert chat(group.url, PROMPTS[1], stream=True) == answers[PROMPTS[1]]
    results: dict[str, str] = {}
    threads = [threading.Thread(target=lambda p=p: results.update({p: chat(group.url, p)})) for p in PROMPTS[2:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {p: answers[p] for p in PROMPTS[2:]}


def test_cancel_sample_and_unload_stay_in_lockstep(group: Group, reference: tuple[Path, dict[str, str]]) -> None:
    """A client that leaves mid-stream is cancelled on both ranks at the same step; sampled (unseeded) tokens
    are drawn alike on both; an unload and the next load happen on both: the greedy answer after all three is
    still one process's."""
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a long story."}]}
    with httpx.stream("POST", f"{group.url}/api/chat", json=body | {"options": {"num_predict": 400}}, timeout=60) as r:
        next(r.iter_lines())
    client = ollama.Client(host=group.url, timeout=120)
    sampled = client.chat("tiny", [{"role": "user", "content": "Hi"}], options={"temperature": 1.0, "num_predict": 12})
    assert sampled.done
    client.chat("tiny", [], keep_alive=0)  # unloads
    assert httpx.get(f"{group.url}/api/ps").json()["models"] == []
    assert chat(group.url, PROMPTS[1]) == reference[1][PROMPTS[1]]
    log = group.log.read_text()
    assert log.count("generation cancelled: client disconnected") == 2, log  # rank 0's and rank 1's
    assert "rank 1: unloaded " in log


def test_ps_and_show_report_the_split(group: Group) -> None:
    chat(group.url, PROMPTS[0])
    (model,) = httpx.get(f"{group.url}/api/ps").json()["models"]
    split = model["split"]
    assert split["backend"] == "ring" and split["ranks"] == 2 and split["parallelism"] == "tensor"
    assert len(split["shard_bytes"]) == 2 and all(n > 0 for n in split["shard_bytes"])
    assert model["size"] >= split["shard_bytes"][0]
    assert httpx.post(f"{group.url}/api/show", json={"model": "tiny"}).json()["split"] == split


def test_what_cannot_run_in_lockstep_is_refused(group: Group) -> None:
    client = ollama.Client(host=group.url, timeout=60)
    with pytest.raises(ollama.ResponseError) as formatted:
        client.chat("tiny", [{"role": "user", "content": "hi"}], format="json")
    assert formatted.value.status_code == 400 and "format is not supported" in formatted.value.error
    with pytest.raises(ollama.ResponseError) as embedded:
        client.embed("tiny", "hi")
    assert embedded.value.status_code == 400 and "embeddings are not supported" in embedded.value.error
    assert chat(group.url, PROMPTS[0])  # and the group still serves


def test_a_killed_follower_gets_503_and_a_clean_stop(group: Group) -> None:
    """Many requests in flight; the follower is killed when the first answer is in: every other one ends
    with a 503 that says why (none hangs: each has a 60 s bound), and rank 0 stops on its own."""
    statuses: list[tuple[int, str]] = []
    first = threading.Event()

    def one(i: int) -> None:
        body = {"model": "tiny", "messages": [{"role": "user", "content": f"Story {i}"}], "stream": False}
        try:
            response = httpx.post(f"{group.url}/api/chat", json=body | {"options": OPTIONS}, timeout=60)
            statuses.append((response.status_code, response.text))
        except httpx.TransportError as e:  # arrived after rank 0 stopped listening
            statuses.append((0, str(e)))
        first.set()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    assert first.wait(timeout=60)
    ranks = group.ranks()
    os.kill(ranks[1], signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    refused = [text for status, text in statuses if status == 503]
    # Running and queued ones are told the reason; one that reaches the engine after its stop began is told that.
    assert any(LOST in text for text in refused), statuses
    assert all(LOST in text or "server is shutting down" in text for text in refused), statuses
    assert all(status in (200, 503, 0) for status, _ in statuses), statuses
    deadline = time.monotonic() + 20  # EXIT_AFTER at most; the launcher also sends it SIGTERM
    while Path(f"/proc/{ranks[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{ranks[0]}").exists(), group.log.read_text()
    assert LOST in group.log.read_text()
