"""POST /api/pull against a stand-in Hugging Face Hub on loopback (HF_ENDPOINT), through the real server
process, huggingface_hub's real HTTP code and the real engine.

Each test pulls its own repository name (`mlx-community/tiny-<test>`), all served from the tiny model's
files, so the tests share one server and one Hugging Face cache without depending on each other's order.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.conftest import Server, cli, start_server, stop_server
from tests.standin_hub import COMMIT, StandinHub

WEIGHTS = "model.safetensors"
CATALOG = """
[latest]
"tiny-hub" = "1m"
[models."tiny-hub:1m"]
repo = "mlx-community/tiny-catalog"
family = "qwen2"
parameter_size = "1M"
quantization_level = "Q4"
capabilities = ["completion"]
context_length = 512
[models."tiny-alien:1m"]
repo = "mlx-community/tiny-alien"
family = "alien"
parameter_size = "1M"
quantization_level = "Q4"
capabilities = ["completion"]
context_length = 512
"""


@pytest.fixture(scope="module")
def hub(tiny_model_dir: Path) -> Iterator[StandinHub]:
    standin = StandinHub.serving("mlx-community/tiny", tiny_model_dir).start()
    yield standin
    standin.stop()


@pytest.fixture(autouse=True)
def clean_faults(hub: StandinHub) -> Iterator[None]:
    hub.faults.__init__()  # type: ignore[misc]
    hub.requests.clear()
    yield
    hub.faults.__init__()  # type: ignore[misc]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, hub: StandinHub) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("pull-home")
    (home / "catalog.toml").write_text(CATALOG)
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(home / "hf"), "MLX_SHIM_PULL_CHUNK_BYTES": "16384"}
    env["MLX_SHIM_HUB_TIMEOUT"] = "3"
    server = start_server(home, env)
    yield server
    stop_server(server)


def cache_repo(srv: Server, repo: str) -> Path:
    return srv.home / "hf" / "hub" / ("models--" + repo.replace("/", "--"))


def pull(srv: Server, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    with httpx.stream("POST", f"{srv.url}/api/pull", json=body, timeout=60) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    return response, lines


def tags(srv: Server) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in httpx.get(f"{srv.url}/api/tags").json()["models"]}


def expected_files(tiny_model_dir: Path) -> dict[str, bytes]:
    """What a pull fetches of the repository: everything mlx-lm loads (not the README)."""
    return {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file() and p.name != "README.md"}


def test_stream_has_ollamas_shape_and_the_model_is_listed_with_true_numbers(
    srv: Server, hub: StandinHub, tiny_model_dir: Path
) -> None:
    hub.faults.delay_per_chunk = 0.05  # slow enough for several throttled progress lines
    response, lines = pull(srv, {"model": "tiny-hub"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-3:] == [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
    files = expected_files(tiny_model_dir)
    digests = {"sha256:" + hashlib.sha256(data).hexdigest(): len(data) for data in files.values()}
    progress: dict[str, list[int]] = {}
    for line in lines[1:-3]:
        assert set(line) <= {"status", "digest", "total", "completed"}
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", line["digest"])
        assert line["status"] == f"pulling {line['digest'][7:19]}"
        assert line["total"] == digests[line["digest"]]
        progress.setdefault(line["digest"], []).append(line.get("completed", 0))
    assert set(progress) == set(digests)
    for digest, seen in progress.items():
        assert seen == sorted(seen) and seen[-1] == digests[digest], digest
    weights = progress["sha256:" + hashlib.sha256(files[WEIGHTS]).hexdigest()]
    assert len(weights) >= 3 and weights[0] == 0  # `completed` is left out while 0, as in Ollama

    listed = tags(srv)["tiny-hub:latest"]
    manifest = srv.home / "manifests" / "registry.ollama.ai" / "library" / "tiny-hub" / "latest"
    assert listed["digest"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert listed["size"] == sum(len(data) for data in files.values())
    assert listed["details"]["format"] == "safetensors"
    assert listed["details"]["family"] == "qwen2" and listed["details"]["families"] == ["qwen2"]
    assert listed["details"]["quantization_level"] == "Q4"
    assert (
        listed["details"]["parameter_size"]
        == httpx.post(f"{srv.url}/api/show", json={"model": "tiny-hub"}).json()["details"]["parameter_size"]
    )
    source = json.loads(manifest.read_text())["source"]
    assert (source["type"], source["repo"], source["revision"]) == ("hf", "mlx-community/tiny-catalog", COMMIT)
    snapshot = cache_repo(srv, "mlx-community/tiny-catalog") / "snapshots" / COMMIT
    assert {p.name: p.read_bytes() for p in snapshot.iterdir()} == files
    assert (cache_repo(srv, "mlx-community/tiny-catalog") / "refs" / "main").read_text() == COMMIT


def test_pulled_model_chats_from_the_cache_without_the_hub(srv: Server, hub: StandinHub) -> None:
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-chat"})[1][-1] == {"status": "success"}
    hub.requests.clear()
    hub.faults.status = 500  # the hub is "down": loading must read only the cache snapshot
    client = ollama.Client(host=srv.url)
    answer = client.chat(
        model="hf.co/mlx-community/tiny-chat",
        messages=[{"role": "user", "content": "hello"}],
        options={"num_predict": 8, "temperature": 0},
        think=False,
    )
    assert answer.message.content and answer.eval_count and answer.eval_count > 0
    assert hub.requests == []


def test_official_client_pull_and_already_present_pull(srv: Server, hub: StandinHub) -> None:
    client = ollama.Client(host=srv.url)
    statuses = [p.status for p in client.pull("hf.co/mlx-community/tiny-client", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert len(hub.downloads(WEIGHTS)) == 1
    hub.requests.clear()
    started = time.monotonic()
    body = {"name": "hf.co/mlx-community/tiny-client", "stream": False, "insecure": True}
    response = httpx.post(f"{srv.url}/api/pull", json=body)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json() == {"status": "success"}
    assert response.headers["content-type"] == "application/json"
    assert hub.downloads(WEIGHTS) == []  # only the manifest was asked for: nothing downloaded again
    print(f"already-present pull: {elapsed * 1000:.0f} ms")


def test_unknown_model_is_ollamas_error_and_nothing_is_registered(srv: Server) -> None:
    response, lines = pull(srv, {"model": "no-such-model-zzz"})
    assert response.status_code == 200
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    response = httpx.post(f"{srv.url}/api/pull", json={"model": "no-such-model-zzz", "stream": False})
    assert response.status_code == 500
    assert response.json() == {"error": "pull model manifest: file does not exist"}
    assert "no-such-model-zzz:latest" not in tags(srv)


def test_an_architecture_mlx_lm_cannot_load_is_refused_before_any_weight_is_asked_for(
    srv: Server, hub: StandinHub, tiny_model_dir: Path
) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    repo = "mlx-community/tiny-alien"
    hub.replaced[repo] = {"config.json": json.dumps({**config, "model_type": "alien_lm"}).encode()}
    error = (
        f"unsupported architecture 'alien_lm': mlx-lm {version('mlx-lm')} cannot load it; "
        "upgrade mlx-lm (pip install -U mlx-lm) or pick another model"
    )
    try:
        for name in (f"hf.co/{repo}", "tiny-alien:1m"):  # by repository and by a library name of the catalog
            response, lines = pull(srv, {"model": name})
            assert response.status_code == 200 and lines[0] == {"status": "pulling manifest"}
            assert lines[-1] == {"error": error}
        response = httpx.post(f"{srv.url}/api/pull", json={"model": f"hf.co/{repo}", "stream": False})
        assert (response.status_code, response.json()) == (500, {"error": error})
    finally:
        del hub.replaced[repo]
    asked = [path for _, path, _ in hub.requests]
    assert any(path.endswith("/config.json") for path in asked)
    assert not [path for path in asked if path.endswith(".safetensors") or path.startswith("/cdn/")], asked
    assert not [path for path in asked if path.endswith(("tokenizer.json", "tokenizer_config.json"))], asked
    assert not {f"hf.co/{repo}:latest", "tiny-alien:1m"} & set(tags(srv))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "invalid model name"),
        ({"model": "bad name!"}, "invalid model name"),
        ({"model": "a/b/c/d"}, "invalid model name"),
    ],
)
def test_invalid_names_are_refused_before_streaming(srv: Server, body: dict[str, Any], error: str) -> None:
    response = httpx.post(f"{srv.url}/api/pull", json=body)
    assert response.status_code == 400 and response.json() == {"error": error}


def test_hub_errors(srv: Server, hub: StandinHub) -> None:
    _, lines = pull(srv, {"model": "hf.co/someone-else/private-model"})  # the hub's 401 RepoNotFound
    assert lines[-1]["error"].startswith("pull model manifest: unauthorized: access denied")
    _, lines = pull(srv, {"model": "hf.co/mlx-community/tiny-errors:no-such-revision"})  # 404 RevisionNotFound
    assert lines[-1] == {"error": "pull model manifest: file does not exist"}
    hub.faults.status = 401
    response = httpx.post(f"{srv.url}/api/pull", json={"model": "hf.co/mlx-community/tiny-errors", "stream": False})
    assert response.status_code == 500 and "unauthorized" in response.json()["error"]
    hub.faults.status = None
    hub.faults.hang_up = True  # the network fails: the hub closes every connection without an answer
    _, lines = pull(srv, {"model": "hf.co/mlx-community/tiny-errors"})
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-1]["error"].startswith(f'pull model manifest: Get "{hub.url}/api/models/mlx-community/tiny-errors/')
    listed = tags(srv)
    assert not any("private-model" in name or "tiny-errors" in name for name in listed)
    assert not (srv.home / "manifests" / "hf.co" / "mlx-community" / "tiny-errors").exists()


def test_a_hub_that_never_answers_fails_the_pull_after_the_timeout(srv: Server, hub: StandinHub) -> None:
    hub.faults.silent = 6  # accepts the connection, then says nothing for longer than MLX_SHIM_HUB_TIMEOUT (3 s)
    started = time.monotonic()
    _, lines = pull(srv, {"model": "hf.co/mlx-community/tiny-silent"})
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-1]["error"].startswith('pull model manifest: Get "'), lines[-1]
    assert time.monotonic() - started < 30  # huggingface_hub retries a timeout a few times, each bounded
    assert "tiny-silent:latest" not in str(tags(srv))


def test_hash_mismatch_is_never_registered(srv: Server, hub: StandinHub) -> None:
    hub.faults.corrupt = True
    _, lines = pull(srv, {"model": "hf.co/mlx-community/tiny-corrupt"})
    assert lines[-2] == {"status": "verifying sha256 digest"}
    assert lines[-1]["error"].startswith("digest mismatch, file must be downloaded again: want sha256:")
    assert "hf.co/mlx-community/tiny-corrupt:latest" not in tags(srv)
    blobs = cache_repo(srv, "mlx-community/tiny-corrupt") / "blobs"
    assert not any(p.name.endswith(".incomplete") for p in blobs.iterdir())  # the bad bytes are gone
    assert not (cache_repo(srv, "mlx-community/tiny-corrupt") / "snapshots" / COMMIT / WEIGHTS).exists()
    hub.faults.corrupt = False
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-corrupt"})[1][-1] == {"status": "success"}
    assert "hf.co/mlx-community/tiny-corrupt:latest" in tags(srv)


def test_interrupted_pull_resumes_where_it_stopped(srv: Server, hub: StandinHub, tiny_model_dir: Path) -> None:
    hub.faults.cut_after, hub.faults.cut_times, hub.faults.fail_after_cut = 60000, 1, True
    _, lines = pull(srv, {"model": "hf.co/mlx-community/tiny-resume"})
    assert "error" in lines[-1]
    assert "hf.co/mlx-community/tiny-resume:latest" not in tags(srv)
    weights = (tiny_model_dir / WEIGHTS).read_bytes()
    partial = (
        cache_repo(srv, "mlx-community/tiny-resume") / "blobs" / f"{hashlib.sha256(weights).hexdigest()}.incomplete"
    )
    assert 0 < partial.stat().st_size < len(weights)
    kept = partial.stat().st_size
    hub.faults.__init__()  # type: ignore[misc]
    hub.requests.clear()
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-resume"})[1][-1] == {"status": "success"}
    assert hub.downloads(WEIGHTS) == [f"bytes={kept}-"]
    snapshot = cache_repo(srv, "mlx-community/tiny-resume") / "snapshots" / COMMIT
    assert (snapshot / WEIGHTS).read_bytes() == (tiny_model_dir / WEIGHTS).read_bytes()


def test_a_cut_connection_is_resumed_within_the_same_pull(srv: Server, hub: StandinHub, tiny_model_dir: Path) -> None:
    data = (tiny_model_dir / WEIGHTS).read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    hub.faults.cut_after, hub.faults.cut_times = 70000, 1
    _, lines = pull(srv, {"model": "hf.co/mlx-community/tiny-retry"})
    assert lines[-1] == {"status": "success"}
    ranges = hub.downloads(WEIGHTS)
    assert len(ranges) == 2 and ranges[0] == "" and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    completed = [line.get("completed", 0) for line in lines if line.get("digest") == digest]
    assert completed == sorted(completed) and completed[-1] == len(data)
    snapshot = cache_repo(srv, "mlx-community/tiny-retry") / "snapshots" / COMMIT
    assert (snapshot / WEIGHTS).read_bytes() == data


def test_two_clients_pulling_one_model_at_once_both_succeed(srv: Server, hub: StandinHub) -> None:
    hub.faults.delay_per_chunk = 0.1
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: pull(srv, {"model": "hf.co/mlx-community/tiny-twice"})[1], range(2)))
    assert [lines[-1] for lines in results] == [{"status": "success"}] * 2
    assert len(hub.downloads(WEIGHTS)) == 1  # the second waited for the first one's file instead of fetching it
    assert "hf.co/mlx-community/tiny-twice:latest" in tags(srv)


def test_client_that_disconnects_stops_the_download(srv: Server, hub: StandinHub, tiny_model_dir: Path) -> None:
    data = (tiny_model_dir / WEIGHTS).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    hub.faults.delay_per_chunk = 0.4
    with httpx.stream("POST", f"{srv.url}/api/pull", json={"model": "hf.co/mlx-community/tiny-gone"}) as response:
        for line in response.iter_lines():
            progress = json.loads(line)
            if progress.get("digest") == f"sha256:{digest}" and progress.get("completed"):
                break  # the weights are on their way: hang up
    partial = cache_repo(srv, "mlx-community/tiny-gone") / "blobs" / f"{digest}.incomplete"
    time.sleep(1.5)
    kept = partial.stat().st_size
    time.sleep(1.2)
    assert partial.stat().st_size == kept and 0 < kept < len(data)  # stopped, and no longer growing
    assert "hf.co/mlx-community/tiny-gone:latest" not in tags(srv)
    hub.faults.delay_per_chunk = 0
    hub.requests.clear()
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-gone"})[1][-1] == {"status": "success"}
    assert hub.downloads(WEIGHTS) == [f"bytes={kept}-"]


def test_non_streaming_client_that_gives_up_stops_the_download(
    srv: Server, hub: StandinHub, tiny_model_dir: Path
) -> None:
    digest = hashlib.sha256((tiny_model_dir / WEIGHTS).read_bytes()).hexdigest()
    hub.faults.delay_per_chunk = 0.4
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{srv.url}/api/pull", json={"model": "hf.co/mlx-community/tiny-waits", "stream": False}, timeout=2)
    partial = cache_repo(srv, "mlx-community/tiny-waits") / "blobs" / f"{digest}.incomplete"
    time.sleep(1.5)
    kept = partial.stat().st_size
    time.sleep(1.2)
    assert 0 < partial.stat().st_size == kept < len((tiny_model_dir / WEIGHTS).read_bytes())
    assert "hf.co/mlx-community/tiny-waits:latest" not in tags(srv)


def test_delete_keeps_shared_weights_and_removes_unshared_downloads(srv: Server) -> None:
    repo = cache_repo(srv, "mlx-community/tiny-shared")
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-shared"})[1][-1] == {"status": "success"}
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-shared:" + COMMIT})[1][-1] == {"status": "success"}
    assert (
        httpx.request("DELETE", f"{srv.url}/api/delete", json={"model": "hf.co/mlx-community/tiny-shared"}).status_code
        == 200
    )
    assert (repo / "snapshots" / COMMIT / WEIGHTS).is_file()  # the other name still uses them
    assert f"hf.co/mlx-community/tiny-shared:{COMMIT}" in tags(srv)
    response = httpx.request(
        "DELETE", f"{srv.url}/api/delete", json={"name": f"hf.co/mlx-community/tiny-shared:{COMMIT}"}
    )
    assert response.status_code == 200
    assert not repo.exists()
    assert not any("tiny-shared" in name for name in tags(srv))


def test_a_pulled_name_replaced_by_a_copy_or_create_releases_its_downloads(srv: Server) -> None:
    """As Ollama prunes the layers a replaced manifest used: the weights mlx-shim downloaded for a name go when
    `cp` or `create` puts another model under that name (nothing else can delete them any more)."""
    for case, replace in (
        ("copy", lambda name, other: httpx.post(f"{srv.url}/api/copy", json={"source": other, "destination": name})),
        ("create", lambda name, other: httpx.post(f"{srv.url}/api/create", json={"model": name, "from": other})),
    ):
        name, other = f"hf.co/mlx-community/tiny-replaced-{case}", f"hf.co/mlx-community/tiny-replacer-{case}"
        for model in (name, other):
            assert pull(srv, {"model": model})[1][-1] == {"status": "success"}
        assert replace(name, other).status_code == 200
        assert not cache_repo(srv, name.removeprefix("hf.co/")).exists()
        assert (cache_repo(srv, other.removeprefix("hf.co/")) / "snapshots" / COMMIT / WEIGHTS).is_file()
        for model in (name, other):
            assert httpx.request("DELETE", f"{srv.url}/api/delete", json={"model": model}).status_code == 200


def test_delete_never_touches_a_local_from_directory(srv: Server, tiny_model_dir: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {tiny_model_dir}\n")
    assert cli("create", "local-tiny", "-f", str(modelfile), env=srv.env).returncode == 0
    before = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir()}
    assert httpx.request("DELETE", f"{srv.url}/api/delete", json={"model": "local-tiny"}).status_code == 200
    assert {p.name: p.read_bytes() for p in tiny_model_dir.iterdir()} == before

    # A model created FROM a pulled snapshot directory has its own copy (uploaded as blobs, as `ollama create`
    # does), so it keeps working when the pulled name and its snapshot go.
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-from"})[1][-1] == {"status": "success"}
    snapshot = cache_repo(srv, "mlx-community/tiny-from") / "snapshots" / COMMIT
    modelfile.write_text(f"FROM {snapshot}\n")
    assert cli("create", "from-snapshot", "-f", str(modelfile), env=srv.env).returncode == 0
    assert (
        httpx.request("DELETE", f"{srv.url}/api/delete", json={"model": "hf.co/mlx-community/tiny-from"}).status_code
        == 200
    )
    shown = httpx.post(f"{srv.url}/api/show", json={"model": "from-snapshot"}).json()
    own = Path(shown["modelfile"].split("\nFROM ", 1)[1].split("\n", 1)[0])
    assert own.parent == srv.home / "models"
    assert (own / WEIGHTS).read_bytes() == (tiny_model_dir / WEIGHTS).read_bytes()
    assert "from-snapshot:latest" in tags(srv)


def test_missing_snapshot_files_are_not_listed(srv: Server) -> None:
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-vanish"})[1][-1] == {"status": "success"}
    assert "hf.co/mlx-community/tiny-vanish:latest" in tags(srv)
    (cache_repo(srv, "mlx-community/tiny-vanish") / "snapshots" / COMMIT / WEIGHTS).unlink()
    assert "hf.co/mlx-community/tiny-vanish:latest" not in tags(srv)
    response = httpx.post(f"{srv.url}/api/chat", json={"model": "hf.co/mlx-community/tiny-vanish", "messages": []})
    assert response.status_code == 404
    assert pull(srv, {"model": "hf.co/mlx-community/tiny-vanish"})[1][-1] == {"status": "success"}  # repaired
    assert "hf.co/mlx-community/tiny-vanish:latest" in tags(srv)


def test_a_loaded_model_whose_files_vanish_is_not_found(srv: Server) -> None:
    """A loaded model's files are checked beside each request (off the way to its first token): once they are
    gone the request is a 404 before anything streams, though the weights are still in memory."""
    model = "hf.co/mlx-community/tiny-loaded-vanish"
    assert pull(srv, {"model": model})[1][-1] == {"status": "success"}
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 2}}
    assert httpx.post(f"{srv.url}/api/chat", json=chat, timeout=60).status_code == 200  # loaded, its files read
    (cache_repo(srv, "mlx-community/tiny-loaded-vanish") / "snapshots" / COMMIT / WEIGHTS).unlink()
    for stream in (True, False):
        response = httpx.post(f"{srv.url}/api/chat", json={**chat, "stream": stream}, timeout=60)
        assert (response.status_code, response.json()) == (404, {"error": f"model '{model}' not found"})
    assert f"{model}:latest" in [m["name"] for m in httpx.get(f"{srv.url}/api/ps").json()["models"]]  # in memory


def test_cli_pull_renders_ollamas_progress(srv: Server, tiny_model_dir: Path) -> None:
    result = cli("pull", "hf.co/mlx-community/tiny-cli", env=srv.env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "pulling manifest"
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    bars = lines[1:-3]  # without a terminal, each layer's bar is printed once, when it completes
    digests = sorted(hashlib.sha256(data).hexdigest()[:12] for data in expected_files(tiny_model_dir).values())
    assert sorted(bar.split(":")[0].removeprefix("pulling ") for bar in bars) == digests
    assert all(re.fullmatch(r"pulling [0-9a-f]{12}: 100% ▕█+▏ +\d+(\.\d)? [KM]?B", bar) for bar in bars), bars
    assert "hf.co/mlx-community/tiny-cli:latest" in tags(srv)
