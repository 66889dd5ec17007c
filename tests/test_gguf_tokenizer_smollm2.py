"""A real GGUF (SmolLM2-135M-Instruct, byte-level BPE with the `smollm` split) rebuilt into the directory mlx-lm
loads: the chat template renders, the prompt encodes to SmolLM2's ids and decodes back, and generation stops on
the tokens llama.cpp stops on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlx_lm.utils import load_config, load_tokenizer

from registry.gguf.tokenizer import write_tokenizer_files
from tests.gguf_tokenizer_sources import TEXTS, read_gguf_metadata, smollm2_gguf

# SmolLM2's own ids for these texts (its tokenizer splits digits one by one, then as GPT-2 does).
KNOWN_IDS = {
    "Hello, we can use": [19556, 28, 392, 416, 722],
    "The capital of France is": [504, 3575, 282, 4649, 314],
    "Hello world! 123": [19556, 905, 17, 216, 33, 34, 35],
    "Café déjà vu.": [51, 1939, 2756, 32564, 90, 16739, 386, 101, 30],
    "  multiple   spaces": [216, 2701, 256, 5600],
    "\n": [198],
}


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    metadata = read_gguf_metadata(smollm2_gguf())
    assert (metadata["tokenizer.ggml.model"], metadata["tokenizer.ggml.pre"]) == ("gpt2", "smollm")
    directory = tmp_path_factory.mktemp("smollm2")
    write_tokenizer_files(metadata, directory)
    # The tensor converter writes the real config.json; mlx-lm's loader only needs one to be there.
    (directory / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    return directory


def test_mlx_lm_stops_on_the_tokens_llama_cpp_stops_on(smollm2_dir: Path) -> None:
    wrapper = load_tokenizer(smollm2_dir, eos_token_ids=load_config(smollm2_dir).get("eos_token_id"))
    assert wrapper.eos_token_id == 2
    # <|im_end|> (the file's eos), <|endoftext|>, and <reponame>, a fill-in-the-middle repo marker.
    assert wrapper.eos_token_ids == {2, 0, 4}
    assert json.loads((smollm2_dir / "generation_config.json").read_text())["eos_token_id"] == [2, 0, 4]
    assert wrapper.bos_token == "<|im_start|>"


def test_chat_prompt_renders_encodes_and_decodes(smollm2_dir: Path) -> None:
    wrapper = load_tokenizer(smollm2_dir)
    messages = [{"role": "user", "content": "What is 12345 + 678?"}]
    prompt = wrapper.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is 12345 + 678?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = wrapper.encode(prompt)
    system = [2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182]
    # "What is 12345 + 678?": every digit its own token, as SmolLM2's split has it.
    user = [1780, 314, 216, 33, 34, 35, 36, 37, 1232, 216, 38, 39, 40, 47]
    assistant = [520, 9531]
    assert ids == [1, 9690, 198, *system, 2, 198, 1, 4093, 198, *user, 2, 198, 1, *assistant, 198]
    assert wrapper.decode(ids) == prompt
    assert "".join(wrapper.decode([i]) for i in ids) == prompt


def test_known_ids_and_round_trips(smollm2_dir: Path) -> None:
    wrapper = load_tokenizer(smollm2_dir)
    for text, ids in KNOWN_IDS.items():
        assert wrapper.encode(text) == ids, text
    for text in TEXTS:
        assert wrapper.decode(wrapper.encode(text)) == text, text


def test_every_id_decodes(smollm2_dir: Path) -> None:
    wrapper = load_tokenizer(smollm2_dir)
    metadata_tokens = json.loads((smollm2_dir / "tokenizer.json").read_text())["model"]["vocab"]
    pieces = wrapper._tokenizer.batch_decode([[i] for i in range(len(metadata_tokens))])
    assert len(pieces) == 49152 and pieces[2] == "<|im_end|>" and pieces[216] == " "
    assert all(isinstance(piece, str) for piece in pieces)
