"""What differs per vision family (shim/engine/vision.py does the rest): the marker a prompt carries per image,
how the processor is called, how its tower runs one image at a time (vision_tower.py), and which decoder reads
the merged embeddings.

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

Arrays = dict[str, np.ndarray]  # the processor's outputs (numpy, made on the prep pool)
Split = Callable[[Arrays], list[Arrays]]  # a request's arrays -> each image's share of them
Features = Callable[[Any, dict[str, mx.array]], mx.array]  # (mlx-vlm's model, one image's share) -> its features


def _rows(arrays: Arrays) -> list[Arrays]:
    """Image i is row i of `pixel_values` (and of `image_sizes` where the processor gives them)."""
    keys = [k for k in ("pixel_values", "image_sizes") if k in arrays]
    return [{k: arrays[k][i : i + 1] for k in keys} for i in range(len(arrays["pixel_values"]))]


def _patches(arrays: Arrays) -> list[Arrays]:
    """Image i is the next `t * h * w` rows of Qwen's patch sequence, its row of `image_grid_thw` the counts."""
    grid, pixels, start, out = arrays["image_grid_thw"], arrays["pixel_values"], 0, []
    for i, count in enumerate(np.prod(grid, axis=1)):
        out.append({"pixel_values": pixels[start : start + count], "image_grid_thw": grid[i : i + 1]})
        start += count
    return out


def _gemma3(model: Any, image: dict[str, mx.array]) -> mx.array:
    """As Gemma 3's get_input_embeddings computes them (channels last, in the projector's dtype)."""
    projector = model.multi_modal_projector
    pixels = image["pixel_values"].transpose(0, 2, 3, 1).astype(projector.mm_input_projection_weight.dtype)
    hidden, _, _ = model.vision_tower(pixels, output_hidden_states=True)
    return projector(hidden)


def _llava(model: Any, image: dict[str, mx.array]) -> mx.array:
    """As LLaVA 1.5's get_input_embeddings computes them: the chosen layer (or layers, joined) without the CLS
    position under the "default" strategy, through the projector."""
    *_, hidden = model.vision_tower(image["pixel_values"].transpose(0, 2, 3, 1), output_hidden_states=True)
    layers = model.vision_feature_layer
    pool = [hidden[layers]] if isinstance(layers, int) else [hidden[i] for i in layers]
    if model.vision_feature_select_strategy == "default":
        pool = [h[:, 1:] for h in pool]
    return model.multi_modal_projector(pool[0] if len(pool) == 1 else mx.concatenate(pool, axis=-1))


def _mistral3(model: Any, image: dict[str, mx.array]) -> mx.array:
    """As Mistral 3's get_input_embeddings computes them: Pixtral's tower over the image at its own size, the
    chosen layer, the projector's patch merger (one row of features per merged patch)."""
    sizes = image["image_sizes"]
    *_, hidden = model.vision_tower(
        image["pixel_values"].transpose(0, 2, 3, 1), output_hidden_states=True, image_sizes=sizes
    )
    selected = hidden[model.vision_feature_layer]
    if selected.ndim == 3 and selected.shape[0] == 1:
        selected = selected.squeeze(0)
    return model.multi_modal_projector(selected, sizes)


def _qwen2_5_vl(model: Any, image: dict[str, mx.array]) -> mx.array:
    """As Qwen2.5-VL's get_input_embeddings computes them: the tower over one image's patches (in its dtype)."""
    pixels = image["pixel_values"].astype(model.vision_tower.patch_embed.proj.weight.dtype)
    return model.vision_tower(pixels, image["image_grid_thw"], output_hidden_states=False)


def _qwen3_vl(model: Any, image: dict[str, mx.array]) -> mx.array:
    """Qwen3-VL's tower over one image's patches: its features and, per deepstack layer, the features that
    layer adds, side by side as (tokens, 1 + layers, hidden) so images join along their tokens."""
    pixels = image["pixel_values"].astype(model.vision_tower.patch_embed.proj.weight.dtype)
    features, deepstack = model.vision_tower(pixels, image["image_grid_thw"])
    return mx.stack([features, *deepstack], axis=1)


_QWEN_MARKER = "<|vision_start|><|image_pad|><|vision_end|>"


@dataclass(frozen=True)
class Family:
    marker: str | None  # the text the processor expands into one image's tokens; None: the processor's own
    special_tokens_kwarg: bool = True  # the processor passes add_special_tokens to its tokenizer only
    positioned: bool = False  # image tokens take 3-D rotary positions: mlx-vlm's decoder on mlx-lm's weights
    # more model inputs from the processor's outputs, on the prep pool (numpy)
    prepare: Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    embed: Callable[..., Any] | None = None  # the merge where mlx-vlm's `get_input_embeddings` is not the model's
    # The tower a piece per image (vision_tower): how a request's arrays split into images, and one image's
    # features; the features of a request's images, joined in order, are what the family's
    # get_input_embeddings takes as `cached_image_features`. None: the tower runs over all images at once.
    split: Split | None = None
    features: Features | None = None
    deepstack: bool = False  # the features carry Qwen3-VL's deepstack layers beside them (_qwen3_vl)


FAMILIES: dict[str, Family] = {
    "gemma3": Family(None, split=_rows, features=_gemma3),
    "mistral3": Family(None, split=_rows, features=_mistral3),
    # its processor hands every keyword to the image processor
    "llava": Family(None, special_tokens_kwarg=False, split=_rows, features=_llava),
    "llava_next": Family(None, special_tokens_kwarg=False, prepare=llava_next.grids, embed=llava_next.input_embeddings),
    "qwen2_5_vl": Family(_QWEN_MARKER, positioned=True, split=_patches, features=_qwen2_5_vl),
    "qwen3_vl": Family(_QWEN_MARKER, positioned=True, split=_patches, features=_qwen3_vl, deepstack=True),
    "qwen3_vl_moe": Family(_QWEN_MARKER, positioned=True, split=_patches, features=_qwen3_vl, deepstack=True),
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
