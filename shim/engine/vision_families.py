"""What differs per vision family (shim/engine/vision.py does the rest): the marker a prompt carries per image,
how the processor is called, and which decoder reads the merged embeddings.

Each family's processor expands its marker into the model's image tokens (Gemma 3: `<start_of_image>` into
the pooled soft tokens; Qwen: `<|image_pad|>` into one token per merged 2 x 2 patch, so the count follows the
image's size; Pixtral: `[IMG]` into rows of patches closed by `[IMG_BREAK]` and a final `[IMG_END]`; LLaVA 1.5:
`<image>` into the tower's patch count; LLaVA 1.6: into its tiles' packed patches, so the count follows the
image's size), and mlx-vlm's `get_input_embeddings` puts the tower's features at those tokens (LLaVA 1.6: the
packing of `llava_next`, which mlx-vlm's model lacks). Where the decoder reads plain sequence positions (Gemma 3,
Mistral 3, LLaVA) mlx-lm's decoder module replaces mlx-vlm's. Qwen2.5-VL and Qwen3-VL give image tokens 3-D
rotary positions (time, row, column) and the text after an image positions that skip ahead less than its token
count: mlx-lm's decoder (plain positions, exact for text alone) cannot take them, so a request with images runs
on mlx-vlm's decoder, whose weights are set to mlx-lm's arrays (one copy in memory), with the prompt's positions;
Qwen3-VL adds its tower's "deepstack" features to the first layers' hidden states at the image tokens.

Llama 3.2 Vision (`mllama`) is not here: its decoder reads images through cross-attention layers that
mlx-lm 0.32.2 has no model for, so it can be served neither as text nor beside mlx-lm's decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from shim.engine import llava_next


@dataclass(frozen=True)
class Family:
    marker: str | None  # the text the processor expands into one image's tokens; None: the processor's own
    special_tokens_kwarg: bool = True  # the processor passes add_special_tokens to its tokenizer only
    positioned: bool = False  # image tokens take 3-D rotary positions: mlx-vlm's decoder on mlx-lm's weights
    # more model inputs from the processor's outputs, on the prep pool (numpy)
    prepare: Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    embed: Callable[..., Any] | None = None  # the merge where mlx-vlm's `get_input_embeddings` is not the model's


FAMILIES: dict[str, Family] = {
    "gemma3": Family(None),
    "mistral3": Family(None),
    "llava": Family(None, special_tokens_kwarg=False),  # its processor hands every keyword to the image processor
    "llava_next": Family(None, special_tokens_kwarg=False, prepare=llava_next.grids, embed=llava_next.input_embeddings),
    "qwen2_5_vl": Family("<|vision_start|><|image_pad|><|vision_end|>", positioned=True),
    "qwen3_vl": Family("<|vision_start|><|image_pad|><|vision_end|>", positioned=True),
    "qwen3_vl_moe": Family("<|vision_start|><|image_pad|><|vision_end|>", positioned=True),
}


def marker(family: Family, processor: Any) -> str:
    return family.marker or getattr(processor, "boi_token", None) or processor.image_token


def input_embeddings(family: Family, model: Any, ids: mx.array, pixels: mx.array, **extra: Any) -> Any:
    """The prompt's input embeddings with the images' features at their tokens (mlx-vlm's InputEmbeddingsFeatures)."""
    if family.embed is not None:
        return family.embed(model, ids, pixels, **extra)
    return model.get_input_embeddings(ids, pixels, **extra)


def share_decoder(family: Family, model: Any, text_model: Any) -> None:
    """Give mlx-vlm's `model` mlx-lm's decoder before any of its own decoder weights are read: the module
    itself, or (positioned families) its arrays, every decoder weight of mlx-vlm's replaced by mlx-lm's."""
    if not family.positioned:
        model.language_model = text_model.language_model
        return
    shared = dict(tree_flatten(text_model.language_model.parameters()))
    own = {k for k, _ in tree_flatten(model.language_model.parameters())}
    if own - set(shared):  # such a weight would be read from disk: a second copy of the decoder
        raise ValueError(f"mlx-vlm's decoder has weights mlx-lm's lacks: {sorted(own - set(shared))[:4]}")
    model.language_model.update(tree_unflatten([(k, shared[k]) for k in own]))


def decoder(family: Family, model: Any, features: Any) -> PositionedDecoder | None:
    """The decoder a request with images runs on: None for mlx-lm's (the text model), else one that knows
    the prompt's positions."""
    return PositionedDecoder(model.language_model, features) if family.positioned else None


class PositionedDecoder:
    """mlx-vlm's Qwen decoder called as mlx-lm's model is, `(inputs, cache, input_embeddings) -> logits`, for
    one prompt: its positions where the cache is inside the prompt, then the next ones after its last (the
    prompt's `rope_deltas` behind the token count); deepstack features with the prompt's image tokens."""

    def __init__(self, language_model: Any, features: Any) -> None:
        self.language_model = language_model
        self.positions: mx.array = features.position_ids  # (3, 1, prompt length)
        self.delta = int(features.rope_deltas.reshape(-1)[0])
        self.visual: mx.array | None = getattr(features, "visual_pos_masks", None)
        deepstack = getattr(features, "deepstack_visual_embeds", None)  # per layer: (image tokens, hidden)
        self.deepstack: mx.array | None = mx.stack(list(deepstack)) if deepstack is not None else None

    def arrays(self) -> list[mx.array]:
        return [a for a in (self.positions, self.visual, self.deepstack) if a is not None]

    def __call__(self, inputs: mx.array, cache: Any = None, input_embeddings: mx.array | None = None) -> mx.array:
        start, length = (cache[0].offset if cache else 0), inputs.shape[1]
        extra = {}
        if start < self.positions.shape[-1]:
            positions = self.positions[:, :, start : start + length]
            if self.deepstack is not None and self.visual is not None:
                seen = int(self.visual[0, :start].sum())
                here = self.visual[:, start : start + length]
                count = int(here.sum())
                if count:
                    deepstack = self.deepstack[:, seen : seen + count]
                    extra = {"visual_pos_masks": here, "deepstack_visual_embeds": deepstack}
        else:
            positions = mx.broadcast_to(mx.arange(start, start + length) + self.delta, (3, 1, length))
        lm = self.language_model
        hidden = lm.model(inputs, inputs_embeds=input_embeddings, cache=cache, position_ids=positions, **extra)
        return lm.model.embed_tokens.as_linear(hidden) if lm.args.tie_word_embeddings else lm.lm_head(hidden)
