"""Pooling as sentence-transformers models declare it: the mode read from a model's files, and padding that
never changes a vector."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from shim.embedding.nomic_bert import gpt2_style
from shim.embedding.pooling import l2_normalize, normalizes, pool, pooling_mode

HIDDEN = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=np.int32)  # the second row has two padding positions


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("cls", HIDDEN[:, 0]),
        ("mean", np.stack([HIDDEN[0].mean(0), HIDDEN[1, :2].mean(0)])),
        ("max", np.stack([HIDDEN[0].max(0), HIDDEN[1, :2].max(0)])),
        ("lasttoken", np.stack([HIDDEN[0, 3], HIDDEN[1, 1]])),
    ],
)
def test_pool_ignores_padding(mode: str, expected: np.ndarray) -> None:
    assert np.allclose(np.array(pool(mx.array(HIDDEN), mx.array(MASK), mode)), expected, atol=1e-6)


def test_l2_normalize() -> None:
    out = np.array(l2_normalize(mx.array([[3.0, 4.0], [0.0, 0.0]])))
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])  # a zero vector stays zero (eps), as torch's normalize


def write_model(path: Path, pooling: dict[str, object] | None, modules: list[str]) -> Path:
    path.mkdir()
    entries = [
        {"path": "1_Pool" if "Pooling" in m else "", "type": f"sentence_transformers.models.{m}"} for m in modules
    ]
    (path / "modules.json").write_text(json.dumps(entries))
    if pooling is not None:
        (path / "1_Pool").mkdir()
        (path / "1_Pool" / "config.json").write_text(json.dumps(pooling))
    return path


def test_pooling_mode_and_normalize_come_from_the_model_files(tmp_path: Path) -> None:
    mxbai_like = write_model(tmp_path / "a", {"pooling_mode_cls_token": True}, ["Transformer", "Pooling"])
    assert (pooling_mode(mxbai_like), normalizes(mxbai_like)) == ("cls", False)
    minilm_like = write_model(
        tmp_path / "b", {"pooling_mode_mean_tokens": True}, ["Transformer", "Pooling", "Normalize"]
    )
    assert (pooling_mode(minilm_like), normalizes(minilm_like)) == ("mean", True)
    newer = write_model(tmp_path / "c", {"pooling_mode": "lasttoken"}, ["Transformer", "Pooling"])
    assert pooling_mode(newer) == "lasttoken"
    bare = tmp_path / "d"
    bare.mkdir()
    assert (pooling_mode(bare), normalizes(bare)) == ("mean", False)
    (bare / "config.json").write_text(json.dumps({"pooling_config": {"pooling_mode": "cls"}}))
    assert pooling_mode(bare) == "cls"  # an mlx-embeddings conversion without the sentence-transformers files


def test_nomic_config_in_either_naming() -> None:
    bert_names = {"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12, "intermediate_size": 3072}
    assert gpt2_style(bert_names).items() >= {"n_embd": 768, "n_head": 12, "n_layer": 12, "n_inner": 3072}.items()
    assert gpt2_style({"n_embd": 64, "hidden_size": 1})["n_embd"] == 64  # Nomic's own name wins
