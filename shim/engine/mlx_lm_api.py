"""Everything mlx-shim takes from mlx-lm, in one place: its public API re-exported, and the few private functions and
attributes it relies on wrapped in functions of our own.

mlx-lm is pinned to the range these were tested with (pyproject: `mlx-lm>=0.32.2,<0.33`); a new minor version is
checked here, not in every module. `registry/` imports this module inside the functions that need it, so the CLI's
client commands (which load `registry` but never MLX) do not pay for importing mlx-lm.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_lm.generate import BatchGenerator, generation_stream
from mlx_lm.generate import generate_step as _generate_step
from mlx_lm.models import mistral3
from mlx_lm.models.cache import KVCache, LRUPromptCache, make_prompt_cache, trim_prompt_cache
from mlx_lm.models.rope_utils import Llama3RoPE
from mlx_lm.sample_utils import make_logits_processors, make_sampler
from mlx_lm.tokenizer_utils import TokenizerWrapper, _infer_tool_parser
from mlx_lm.utils import _get_classes, dequantize_model, infer_quant_config, load_tokenizer, quantize_model, save
from mlx_lm.utils import load_model as _load_model

__all__ = [
    "BatchGenerator",
    "dequantize_model",
    "KVCache",
    "LRUPromptCache",
    "TokenizerWrapper",
    "generate_step",
    "generation_stream",
    "hf_tokenizer",
    "infer_quant_config",
    "infer_tool_parser",
    "llama3_rope_frequencies",
    "load_model",
    "load_with_config",
    "make_logits_processors",
    "make_prompt_cache",
    "make_sampler",
    "MLX_LM_VERSION",
    "model_classes",
    "prefill_queue",
    "quantize_model",
    "save",
    "trim_prompt_cache",
]


def load_model(path: str) -> tuple[nn.Module, TokenizerWrapper]:
    """A model directory's model and tokenizer, as mlx-lm loads them."""
    model, tokenizer, _ = load_with_config(path, lazy=False)
    return model, tokenizer


def load_with_config(path: str, *, lazy: bool) -> tuple[nn.Module, TokenizerWrapper, dict[str, Any]]:
    """The model, tokenizer and config.json of a local model directory (`lazy`: weights not read until used):
    mlx-lm's `load`, with the decoders of the model types it has no entry for (`_TEXT_OF`) found too."""
    model, config = _load_model(Path(path), lazy, get_model_classes=_classes)
    tokenizer = load_tokenizer(Path(path), None, eos_token_ids=config.get("eos_token_id", None))
    return model, tokenizer, config


class _LlavaArgs(mistral3.ModelArgs):
    def __post_init__(self) -> None:
        """llava-hf's configs leave out the text model's sizes that are transformers' defaults for its type (LLaVA
        1.5 7B, LLaVA 1.6 Mistral 7B: hidden_size, num_hidden_layers, num_attention_heads), which mlx-lm's
        ModelArgs require."""
        from transformers import AutoConfig

        defaults = AutoConfig.for_model(self.text_config.get("model_type", "llama"))
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            self.text_config.setdefault(key, getattr(defaults, key))
        super().__post_init__()


class _LlavaNext(mistral3.Model):
    """LLaVA 1.6 (`llava_next`)'s decoder, loaded as mlx-lm loads LLaVA 1.5's (its `llava` is mistral3's model over
    the text config, the tower's weights dropped); `image_newline`, the vector that closes each row of image
    tiles, belongs to the vision half too (mlx-vlm's model holds it)."""

    def sanitize(self, weights: dict[str, Any]) -> dict[str, Any]:
        return super().sanitize({k: v for k, v in weights.items() if k != "image_newline"})


# Model types whose decoder one of mlx-lm's models is, where its own entry (LLaVA 1.5's) or none (1.6's) would not
# load llava-hf's configs.
_TEXT_OF: dict[str, tuple[Any, Any]] = {"llava": (mistral3.Model, _LlavaArgs), "llava_next": (_LlavaNext, _LlavaArgs)}


def _classes(config: dict[str, Any]) -> Any:
    return _TEXT_OF.get(config.get("model_type", "")) or _get_classes(config)


def generate_step(prompt: mx.array, model: nn.Module, **kwargs: Any) -> Generator[tuple[int, mx.array], None, None]:
    """mlx-lm's generate_step: (token id, log-probabilities) per step. Its annotation says the token is an array;
    it yields the id as an int (`y.item()`), which is what we declare."""
    return cast(Generator[tuple[int, mx.array], None, None], _generate_step(prompt, model, **kwargs))


def prefill_queue(generator: BatchGenerator) -> list[int]:
    """The prompt tokens each sequence a BatchGenerator has yet to prefill (the last one, which its first decode
    step takes, not counted): those in its prompt batch first, then those waiting to join it, in order."""
    rows = [entry[0] for entry in generator._currently_processing]
    rows += [entry[1] for entry in generator._unprocessed_sequences]
    return [sum(len(segment) for segment in segments) - 1 for segments in rows]


def hf_tokenizer(tokenizer: TokenizerWrapper) -> Any:
    """The Hugging Face tokenizer inside mlx-lm's wrapper (its `backend_tokenizer` is the Rust one)."""
    return tokenizer._tokenizer


class _Vocabulary:
    """Enough of a vocabulary dict (`in`) for mlx-lm's tool-parser inference."""

    def __init__(self, has_token: Callable[[str], bool]) -> None:
        self.has_token = has_token

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.has_token(token)


def infer_tool_parser(chat_template: str, has_token: Callable[[str], bool]) -> str | None:
    """The tool-call parser mlx-lm's tokenizer loader infers from a chat template and vocabulary (when
    tokenizer_config names none), asked without loading the tokenizer: called, not copied, so the two never
    disagree."""
    vocabulary = _Vocabulary(has_token)
    found = _infer_tool_parser(SimpleNamespace(chat_template=chat_template, get_vocab=lambda: vocabulary))
    return str(found) if found else None


MLX_LM_VERSION = version("mlx-lm")


def model_classes(config: dict[str, Any]) -> tuple[type[nn.Module], Any] | None:
    """mlx-lm's model class and its ModelArgs for a config.json (after mlx-lm's own MODEL_REMAPPING), or None when
    the installed mlx-lm has none for its `model_type` (a missing one, an unknown one, or a helper module such as
    `cache` that `_get_classes` would import and then find no Model in)."""
    try:
        return _classes(config)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def llama3_rope_frequencies(dims: int, base: float, scaling: dict[str, Any]) -> np.ndarray:
    """The per-dimension frequencies mlx-lm's Llama 3 RoPE computes for `scaling` (its rope_scaling dict)."""
    rope = Llama3RoPE(
        dims, max_position_embeddings=scaling["original_max_position_embeddings"], base=base, scaling_config=scaling
    )
    return np.array(rope._freqs, dtype=np.float64)
