"""Prompt building on the real tiny tokenizer: chat templates, Go templates, Ollama's truncation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlx_lm.tokenizer_utils import load as load_tokenizer

from registry.names import ModelName
from registry.store import StoredModel
from shim.engine.prompt import _fit_messages, build_prompt
from shim.engine.types import CompletionRequest, Message
from shim.errors import ShimError
from shim.options import GenerationOptions


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return load_tokenizer(tiny_model_dir)


def request(tiny_model_dir: Path, messages: list[Message], **kwargs: Any) -> CompletionRequest:
    stored = StoredModel(ModelName.parse("t"), tiny_model_dir, {"source": {"path": str(tiny_model_dir)}}, "0", 0)
    return CompletionRequest(model=stored, options=GenerationOptions(), messages=messages, **kwargs)


def history(turns: int) -> list[Message]:
    out = [Message("system", "SYSTEM-PROMPT stays.")]
    for i in range(turns):
        out += [Message("user", f"question {i} about the weather"), Message("assistant", f"answer {i} is sunny")]
    return out + [Message("user", "LAST-QUESTION")]


def test_oldest_messages_go_first_and_system_stays(tokenizer: Any, tiny_model_dir: Path) -> None:
    tokens = build_prompt(request(tiny_model_dir, history(40), think=False), tokenizer, 200)
    text = tokenizer.decode(tokens)
    assert len(tokens) <= 200
    assert "SYSTEM-PROMPT stays." in text and "LAST-QUESTION" in text
    assert "question 0 " not in text and "question 39 " in text
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_everything_fits_untouched(tokenizer: Any, tiny_model_dir: Path) -> None:
    tokens = build_prompt(request(tiny_model_dir, history(2)), tokenizer, 4096)
    assert "question 0 " in tokenizer.decode(tokens)


def test_a_single_long_message_keeps_head_and_tail(tokenizer: Any, tiny_model_dir: Path) -> None:
    long = Message("user", "START " + "word " * 400 + "END")
    tokens = build_prompt(request(tiny_model_dir, [long]), tokenizer, 64)
    assert len(tokens) == 64
    full = build_prompt(request(tiny_model_dir, [long]), tokenizer, 4096)
    assert tokens[:4] == full[:4] and tokens[4:] == full[-60:]  # num_keep (4) tokens, then the newest
    with pytest.raises(ShimError, match="exceeds the context length"):
        build_prompt(request(tiny_model_dir, [long], truncate=False), tokenizer, 64)


def test_go_template_and_raw(tokenizer: Any, tiny_model_dir: Path) -> None:
    req = request(tiny_model_dir, [Message("system", "S"), Message("user", "P")],
                  template="{{ if .System }}[{{ .System }}]{{ end }}<{{ .Prompt }}>")  # fmt: skip
    assert tokenizer.decode(build_prompt(req, tokenizer, 4096)) == "[S]<P>"
    raw = CompletionRequest(model=req.model, options=req.options, raw_prompt="The sky is")
    assert tokenizer.decode(build_prompt(raw, tokenizer, 4096)) == "The sky is"


def test_a_model_without_chat_template_gets_ollamas_default(tokenizer: Any, tiny_model_dir: Path) -> None:
    template = tokenizer.chat_template
    tokenizer.chat_template = None
    try:
        req = request(tiny_model_dir, [Message("system", "S"), Message("user", "just the prompt")])
        assert tokenizer.decode(build_prompt(req, tokenizer, 4096)) == "just the prompt"
    finally:
        tokenizer.chat_template = template


@pytest.mark.parametrize("num_ctx", [60, 200, 700, 3000])
def test_history_cut_is_ollamas_walk_back_in_few_renders(tokenizer: Any, tiny_model_dir: Path, num_ctx: int) -> None:
    """The cut is the one Ollama's message-by-message walk back finds, with a handful of renders: each render
    tokenizes the whole prompt on the engine's worker thread, which decodes every stream meanwhile."""
    messages = history(150)
    renders = 0

    def fits(candidate: list[Message]) -> bool:
        nonlocal renders
        renders += 1
        text = tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in candidate], tokenize=False
        )
        return len(tokenizer.encode(text)) <= num_ctx

    walked = len(messages) - 1  # Ollama's chatPrompt
    for i in range(len(messages) - 2, -1, -1):
        if not fits([m for m in messages[:i] if m.role == "system"] + messages[i:]):
            break
        walked = i
    renders = 0
    fitted = _fit_messages(messages, fits)
    assert fitted == [m for m in messages[:walked] if m.role == "system"] + messages[walked:]
    assert renders <= 10  # log2 of the 301 messages, where the walk back took up to 300
