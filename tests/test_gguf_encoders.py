"""Embedding GGUFs (bert, nomic-bert) convert into the directory the shim's encoder loads (shim/embedding), and
the loaded network computes the same hidden states as the source encoder holding the GGUF's values.

Tolerance: float32 on both sides (load_encoder casts to float32 on the CPU backend) and identical weights, so
max |Δ| <= 1e-4 · max |hidden state|.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from registry.gguf import convert_gguf
from registry.model_dir import ModelDirInfo
from shim.embedding import load_encoder
from tests.gguf_tiny import WRITABLE
from tests.gguf_tiny_encoders import BERT_CONFIG, NOMIC_CONFIG, make_encoder, write_encoder_gguf

# (layers, token embedding) types: every type the gguf package writes, and widths mixed in one file.
CASES = [*((qtype, None) for qtype in WRITABLE), ("Q4_0", "Q8_0"), ("Q5_1", "F16")]


@pytest.mark.parametrize(("layers", "embedding"), CASES)
@pytest.mark.parametrize("config", [BERT_CONFIG, NOMIC_CONFIG], ids=["bert", "nomic-bert"])
def test_encoder_round_trip(config: dict, layers: str, embedding: str | None, tmp_path: Path) -> None:
    tiny = write_encoder_gguf(config, layers, tmp_path / "tiny.gguf", embed_type=embedding)
    result = convert_gguf(tiny.path, tmp_path / "model")
    encoder = load_encoder(tmp_path / "model")
    source = make_encoder(config, 0)
    source.load_weights([(name, mx.array(value)) for name, value in tiny.reference.items()])
    ids = mx.array([[2, 5, 6, 7, 8, 3, 0, 0], [2, 9, 10, 11, 12, 13, 14, 3]])
    mask = mx.array([[1] * 6 + [0] * 2, [1] * 8])
    ours, theirs = np.array(encoder.network(ids, mask)), np.array(source(ids, mask))
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()
    info = ModelDirInfo.read(tmp_path / "model")
    assert info.capabilities == ("embedding",) and info.parameter_count == result.parameter_count
    assert encoder.tokenize("hello world") == [2, 5, 6, 3]  # [CLS] hello world [SEP], via the tokenizer module


def test_pooling_and_quantization_files(tmp_path: Path) -> None:
    convert_gguf(write_encoder_gguf(BERT_CONFIG, "Q4_0", tmp_path / "b.gguf", embed_type="Q8_0").path, tmp_path / "b")
    convert_gguf(write_encoder_gguf(NOMIC_CONFIG, "F16", tmp_path / "n.gguf").path, tmp_path / "n")
    bert, nomic = load_encoder(tmp_path / "b"), load_encoder(tmp_path / "n")
    assert (bert.pooling, bert.normalize) == ("mean", True)  # GGUF pooling_type 1; Ollama's bert default
    assert (nomic.pooling, nomic.normalize) == ("cls", False)  # pooling_type 2; Ollama's nomic-bert default
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["quantization"]["bits"] == 4
    assert config["quantization"]["embeddings.word_embeddings"]["bits"] == 8
    nomic_config = json.loads((tmp_path / "n" / "config.json").read_text())
    assert nomic_config["model_type"] == "nomic_bert" and nomic_config["rotary_emb_base"] == 1000
    assert "quantization" not in nomic_config
    assert bert.context_length == 128 and nomic.context_length == 2048
