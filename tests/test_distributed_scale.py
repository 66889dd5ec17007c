"""Beyond two ranks and beyond tensor parallelism, on one machine over the ring backend on loopback: a
random-weight ministral3 model (4 KV heads, 4 layers, the tiny model's tokenizer and chat template) served by
four processes tensor parallel, and by two as a pipeline of layers (MLX_SHIM_PIPELINE), against what one
process answers; a model that splits neither way over four is refused clearly; and a rank whose store is not
rank 0's ends the job before it serves.

Tensor parallel splits each projection's sums between ranks, which changes their order: every token's
logprob must be within LOGPROB_TOLERANCE of one process's, and the answers may part only where one
process's two best tokens were within that of each other (a near tie, which the order can flip). A pipeline
runs each layer whole on one rank and gathers its last hidden state: its greedy answers are one process's,
character for character."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Server, cli, start_server, stop_server
from tests.test_distributed import Group, launch_group, start_group
from tests.test_distributed_units import random_model

PROMPTS = ["Hello!", "Tell me a story.", "What is 2+2?"]
LOGPROB_TOLERANCE = 1e-3  # float32 weights: a different summation order moves a logprob by about 1e-6
MAX_THREADS = 24  # per rank (19 on rank 0, 14 on the others here): MLX, the ring backend, heartbeat, rank 0's server
MINISTRAL3 = {
    "model_type": "ministral3",
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "rms_norm_eps": 1e-5,
    "vocab_size": 1536,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1e6,
        "llama_4_scaling_beta": 0.1,
        "original_max_position_embeddings": 4096,
    },
}

Answer = list[tuple[str, float, float]]  # per token: its text, its logprob, the runner-up's logprob

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks' pids in /proc")


def answer(url: str, prompt: str, stream: bool = False) -> Answer:
    body = {
        "model": "rand",
        "messages": [{"role": "user", "content": prompt}],
        "options": {"temperature": 0, "num_predict": 8},
        "logprobs": True,
        "top_logprobs": 2,
        "stream": stream,
    }
    with httpx.stream("POST", f"{url}/api/chat", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        chunks = [orjson.loads(line) for line in response.iter_lines() if line]
    entries = [entry for chunk in chunks for entry in chunk.get("logprobs", [])]
    return [(e["token"], e["logprob"], e["top_logprobs"][1]["logprob"]) for e in entries]


def assert_close(got: Answer, want: Answer) -> None:
    """Token for token within LOGPROB_TOLERANCE, until a near tie in one process's answer lets them part."""
    assert len(want) >= 4, want  # enough tokens for the comparison to mean something
    for (token, logprob, _), (expected, expected_logprob, runner_up) in zip(got, want, strict=False):
        assert abs(logprob - expected_logprob) <= LOGPROB_TOLERANCE, (got, want)
        if token != expected:
            assert expected_logprob - runner_up <= LOGPROB_TOLERANCE, (got, want)
            return
    assert len(got) == len(want), (got, want)


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[tuple[Path, dict[str, Answer]]]:
    """One process's answers to PROMPTS from the random model, and the home whose store has it as `rand`."""
    home = tmp_path_factory.mktemp("home")
    model = random_model(tmp_path_factory.mktemp("models") / "ministral3", MINISTRAL3, tiny_model_dir, seed=3)
    server: Server = start_server(home)
    try:
        for name, source in (("rand", model), ("tiny", tiny_model_dir)):
            (home / f"{name}.Modelfile").write_text(f"FROM {source}\n")
            created = cli("create", name, "-f", str(home / f"{name}.Modelfile"), env=server.env)
            assert created.returncode == 0, created.stderr
        answers = {prompt: answer(server.url, prompt) for prompt in PROMPTS}
    finally:
        stop_server(server)
    yield home, answers


def ask_all(group: Group) -> dict[str, Answer]:
    """The first prompt streamed, the others at once (batched)."""
    answers = {PROMPTS[0]: answer(group.url, PROMPTS[0], stream=True)}
    threads = [threading.Thread(target=lambda p=p: answers.update({p: answer(group.url, p)})) for p in PROMPTS[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def split_of(group: Group) -> dict[str, Any]:
    (model,) = httpx.get(f"{group.url}/api/ps").json()["models"]
    return model["split"]


def test_four_ranks_tensor_parallel_match_one_process(reference: tuple[Path, dict[str, Answer]]) -> None:
    home, want = reference
    group = launch_group(home, ranks=4)
    try:
        got = ask_all(group)
        for prompt in PROMPTS:
            assert_close(got[prompt], want[prompt])
        split = split_of(group)
        assert split["ranks"] == 4 and split["parallelism"] == "tensor" and len(split["shard_bytes"]) == 4
        ranks = group.ranks()
        assert sorted(ranks) == [0, 1, 2, 3]
        threads = {rank: len(list(Path(f"/proc/{pid}/task").iterdir())) for rank, pid in ranks.items()}
        assert all(n <= MAX_THREADS for n in threads.values()), threads
        # The trained tiny model has 2 key-value heads and 2 layers: it splits neither way over 4 ranks.
        body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
        refused = httpx.post(f"{group.url}/api/chat", json=body, timeout=120)
        assert refused.status_code == 500 and refused.json()["error"] == (
            "unable to load model: rank 0 could not load its shard: qwen2 models cannot be split 4 ways: "
            "its 2 layers are too few, and its 2 key-value heads do not divide among 4 ranks"
        ), refused.text
        short = body | {"model": "rand", "options": {"num_predict": 2}}
        still = httpx.post(f"{group.url}/api/chat", json=short, timeout=120)
        assert still.status_code == 200 and still.json()["done"], still.text  # and the group still serves
    finally:
        group.stop()


def test_two_ranks_pipeline_match_one_process(reference: tuple[Path, dict[str, Answer]]) -> None:
    home, want = reference
    group = launch_group(home, ranks=2, env={"MLX_SHIM_PIPELINE": "1"})
    try:
        got = ask_all(group)
        assert {p: "".join(t for t, _, _ in a) for p, a in got.items()} == {
            p: "".join(t for t, _, _ in a) for p, a in want.items()
        }
        for prompt in PROMPTS:
            assert_close(got[prompt], want[prompt])
        split = split_of(group)
        assert split["ranks"] == 2 and split["parallelism"] == "pipeline"
        # Two layers each, and the embedding (tied to the head) on both: each holds more than a quarter.
        assert all(n > sum(split["shard_bytes"]) // 4 for n in split["shard_bytes"]), split
    finally:
        group.stop()


def test_a_rank_with_another_store_ends_the_job(reference: tuple[Path, dict[str, Answer]], tmp_path: Path) -> None:
    home = reference[0]
    other = tmp_path / "other"
    other.mkdir()
    command = f"""sh -c 'if [ "$MLX_RANK" = 1 ]; then export MLX_SHIM_HOME={other}; fi; exec mlx-shim serve'"""
    group = start_group(home, ranks=2, command=command)
    try:
        # mlx.launch exits 0 itself: it says how the first rank to end exited, then stops the others.
        group.launcher.wait(timeout=60)
        log = group.log.read_text()
        assert re.search(r"rank [01] exited with code 1\b", log), log
        want = f"rank 1 on {socket.gethostname()}: its store is {other.resolve()}, rank 0's is {home.resolve()}"
        assert f"{want}: every host needs the same store at the same path" in log, log  # said by rank 0 and 1
        assert "listening on" not in log, log
    finally:
        group.stop()
