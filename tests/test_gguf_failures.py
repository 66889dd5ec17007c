"""What cannot be converted fails with a GGUFError a user can act on, and no failure leaves anything behind;
plus the layout cases: sharded safetensors and multimodal GGUFs whose vision tower is left out."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from gguf import GGUFWriter
from mlx_lm.utils import load_model

from registry.gguf import GGUFError, convert_gguf, is_gguf
from registry.gguf import plan as plan_module
from tests.gguf_tiny import CONFIGS, tiny_decoder


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def minimal_gguf(path: Path, arch: str, tensors: dict[str, np.ndarray]) -> Path:
    writer = GGUFWriter(path, arch)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_unsupported_architecture(tmp_path: Path) -> None:
    source = minimal_gguf(tmp_path / "xyz.gguf", "xyz", {"token_embd.weight": np.zeros((4, 32), np.float32)})
    with pytest.raises(GGUFError) as error:
        convert_gguf(source, tmp_path / "out" / "model")
    assert error.value.message.startswith("unsupported GGUF architecture 'xyz' (supported: bert, gemma2, gemma3,")
    assert listing(tmp_path) == ["out", "xyz.gguf"] and listing(tmp_path / "out") == []


def test_unsupported_tensor_type(tmp_path: Path) -> None:
    """An integer tensor where a weight belongs (a type gguf can hold but no model weight uses)."""
    tiny = tiny_decoder("llama", "F32", tmp_path / "tiny.gguf",
                        extra_tensors={"blk.0.attn_q.bias": np.arange(64, dtype=np.int32)})  # fmt: skip
    with pytest.raises(GGUFError, match=r"^unsupported GGUF tensor type I32 \(tensor 'blk.0.attn_q.bias'\)$"):
        convert_gguf(tiny.path, tmp_path / "model")
    assert listing(tmp_path) == ["tiny.gguf"]


def test_unknown_tensor_type_id(tmp_path: Path) -> None:
    """A type id newer than the installed gguf package knows: the file cannot even be parsed."""
    source = minimal_gguf(tmp_path / "new.gguf", "llama", {"token_embd.weight": np.zeros((4, 32), np.float32)})
    data = bytearray(source.read_bytes())
    name = data.index(b"token_embd.weight") + len(b"token_embd.weight")
    data[name + 4 + 16 : name + 4 + 20] = (99).to_bytes(4, "little")  # n_dims u32, 2 dims u64, then the type
    source.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=r"^cannot read GGUF file new\.gguf: .*99"):
        convert_gguf(source, tmp_path / "model")
    assert listing(tmp_path) == ["new.gguf"]


def test_not_a_gguf_and_existing_target(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"PK\x03\x04 not a gguf")
    assert not is_gguf(tmp_path / "weights.bin") and not is_gguf(tmp_path / "absent")
    with pytest.raises(GGUFError, match="weights.bin is not a GGUF file"):
        convert_gguf(tmp_path / "weights.bin", tmp_path / "model")
    tiny = tiny_decoder("llama", "F32", tmp_path / "tiny.gguf")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(GGUFError, match="already exists"):
        convert_gguf(tiny.path, tmp_path / "taken")
    assert (tmp_path / "taken" / "file").read_text() == "mine"


def test_a_tensor_with_no_place_in_the_model(tmp_path: Path) -> None:
    tiny = tiny_decoder("qwen3", "F32", tmp_path / "tiny.gguf",
                        extra_tensors={"blk.0.ffn_gate_inp.weight": np.zeros((4, 64), np.float32)})  # fmt: skip
    with pytest.raises(GGUFError, match="tensor 'blk.0.ffn_gate_inp.weight' of this qwen3 GGUF has no place"):
        convert_gguf(tiny.path, tmp_path / "model")


def test_failure_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = tiny_decoder("llama", "Q8_0", tmp_path / "tiny.gguf")
    real, calls = plan_module.encode, []

    def failing(*args: object, **kwargs: object) -> dict[str, np.ndarray]:
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_module, "encode", failing)
    with pytest.raises(GGUFError, match="writing the converted model failed: .*No space left on device"):
        convert_gguf(tiny.path, tmp_path / "model")
    assert listing(tmp_path) == ["tiny.gguf"]
    monkeypatch.setattr(plan_module, "encode", real)
    convert_gguf(tiny.path, tmp_path / "model")  # the same target works once the cause is gone
    assert (tmp_path / "model" / "config.json").is_file()


def test_sharded_output_loads_the_same(tmp_path: Path) -> None:
    tiny = tiny_decoder("llama", "Q4_1", tmp_path / "tiny.gguf")
    convert_gguf(tiny.path, tmp_path / "one")
    convert_gguf(tiny.path, tmp_path / "many", max_shard_bytes=10_000)
    shards = sorted(p.name for p in (tmp_path / "many").glob("*.safetensors"))
    assert len(shards) >= 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((tmp_path / "many" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert set(index["weight_map"]) == set(mx.load(str(tmp_path / "one" / "model.safetensors")))
    prompt = mx.array([[5, 17, 42, 99]])
    one, many = (np.array(load_model(tmp_path / name)[0](prompt)) for name in ("one", "many"))
    np.testing.assert_array_equal(one, many)


def test_gemma3_vision_tower_is_left_out_and_reported(tmp_path: Path) -> None:
    vision = {"v.blk.0.attn_q.weight": np.zeros((32, 32), np.float32), "v.patch_embd.bias": np.zeros(32, np.float32),
              "mm.input_projection.weight": np.zeros((64, 32), np.float32)}  # fmt: skip
    tiny = tiny_decoder("gemma3", "Q8_0", tmp_path / "tiny.gguf", extra_tensors=vision,
                        extra_metadata={"gemma3.vision.block_count": 1})  # fmt: skip
    result = convert_gguf(tiny.path, tmp_path / "model")
    assert result.skipped_tensors == tuple(vision)
    assert result.parameter_count == sum(v.size for v in tiny.reference.values())  # the text model alone
    model, config = load_model(tmp_path / "model")
    assert config["model_type"] == "gemma3_text" and config["vocab_size"] == CONFIGS["gemma3"]["vocab_size"]
