"""The distributed pieces that run in one process: an architecture without tensor or pipeline sharding in
mlx-lm is refused at load with a clear error (on every rank: a group of one here), so is a model directory a
host lacks; a pipeline is taken when asked for; a store unlike rank 0's is told apart; and the single-process
engine's hooks change nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

from shim.distributed.lockstep import Lockstep
from shim.distributed.shard import ShardError, load_shard, uneven_heads
from shim.distributed.store_check import differences, files_fingerprint
from shim.engine import mlx_lm_api

GEMMA = {
    "model_type": "gemma",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "rms_norm_eps": 1e-6,
    "vocab_size": 1536,
}


def random_model(directory: Path, config: dict[str, object], tokenizer_from: Path, seed: int = 0) -> Path:
    """A random-weight model of `config`'s architecture with the tiny model's tokenizer (and chat template)."""
    classes = mlx_lm_api.model_classes(config)
    assert classes is not None
    model_class, args_class = classes
    mx.random.seed(seed)
    model = model_class(args_class.from_dict(config))
    directory.mkdir()
    mx.save_safetensors(str(directory / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (directory / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_from / name, directory / name)
    return directory


def test_an_architecture_without_sharding_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = random_model(tmp_path / "gemma", GEMMA, tiny_model_dir)
    with pytest.raises(ShardError, match="rank 0 could not load its shard: gemma models cannot be split"):
        load_shard(mx.distributed.init(), str(path))


def test_a_missing_model_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="no model files at .*: every host needs the store at the same path"):
        load_shard(mx.distributed.init(), str(tmp_path / "absent"))


def test_a_shardable_model_reports_its_split(tiny_model_dir: Path) -> None:
    shard = load_shard(mx.distributed.init(), str(tiny_model_dir))
    assert shard.split["ranks"] == 1 and shard.split["parallelism"] == "tensor"
    assert shard.split["shard_bytes"][0] > 0


def test_pipeline_is_taken_where_asked_and_the_model_has_it(tiny_model_dir: Path) -> None:
    shard = load_shard(mx.distributed.init(), str(tiny_model_dir), pipeline=True)  # qwen2: both in mlx-lm
    assert shard.split["parallelism"] == "pipeline" and shard.split["shard_bytes"][0] > 0


def test_a_store_that_differs_from_rank_0s_is_named(tmp_path: Path) -> None:
    home, model = tmp_path / "store", tmp_path / "model"
    home.mkdir()
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"1234")
    fingerprint = files_fingerprint(model)
    assert fingerprint is not None
    leader = {"home": str(home), "models": {"m:latest": [str(model), fingerprint]}}
    assert differences(leader, home) == ""
    assert differences(leader, tmp_path / "other") == f"its store is {tmp_path / 'other'}, rank 0's is {home}"
    (model / "model.safetensors").write_bytes(b"12345")
    assert differences(leader, home) == f"the files for m:latest at {model} are not rank 0's (names or sizes differ)"
    shutil.rmtree(model)
    assert differences(leader, home) == f"no model files for m:latest at {model}"


def test_the_single_process_hooks_change_nothing() -> None:
    hooks = Lockstep()
    assert hooks.seed(7) == 7 and hooks.share_of(1000) == 1000
    error = hooks.failed(ValueError("boom"))
    assert error.message == "boom" and error.status == 500
    hooks.check_embed()


def test_heads_that_do_not_divide_among_the_ranks_are_named() -> None:
    assert uneven_heads({"num_attention_heads": 4, "num_key_value_heads": 2}, 2) == ""
    assert uneven_heads({"num_attention_heads": 4, "num_key_value_heads": 2}, 4) == (
        "its 2 key-value heads do not divide among 4 ranks"
    )
    assert uneven_heads({"text_config": {"num_attention_heads": 6}}, 4) == (
        "its 6 attention heads do not divide among 4 ranks"
    )
