"""A request's image features, made on the engine thread a piece per engine turn.

The vision tower is MLX, so it runs on the engine thread; run over every image of a request at once it is one
long step (a real Gemma 3 tower takes a large share of a second per image on a laptop), and every text stream
of every model waits for it. So where the family's tower can take its images one by one, each engine turn runs
it over one image (tower, feature selection and projector, as the family's `get_input_embeddings` does); a last
piece puts the features at the image tokens of the prompt's input embeddings, through mlx-vlm's own
`get_input_embeddings` (its `cached_image_features`), so the merge is the family's. Each image's share of the
processor's arrays: a row of `pixel_values` (Gemma 3, LLaVA 1.5; Mistral 3's rows are padded to the largest
image, and `image_sizes` says each one's own size), or for Qwen2.5-VL and Qwen3-VL the image's patches,
`t * h * w` rows of the patch sequence as its `image_grid_thw` row counts them (their towers' attention never
crosses images; Qwen3-VL's tower also gives per-layer "deepstack" features, which mlx-vlm's merge of cached
features leaves out, so they are joined here). LLaVA 1.6 runs `get_input_embeddings` whole, in one piece (one
image's tiles are its rows). Either way the
merge is given the processor's other outputs (Qwen's `image_grid_thw`, Pixtral's `image_sizes`), and the
family picks the decoder that reads the result (`vision_families.decoder`: Qwen's positions and deepstack
features come out of the merge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx
import numpy as np

from shim.engine.vision import ImageInputs, Vision, VisionInputs
from shim.engine.vision_families import decoder, input_embeddings

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


# model_type -> how a request's arrays split into images, and one image's features; the features of a
# request's images, joined in order, are what the family's get_input_embeddings takes as `cached_image_features`.
PER_IMAGE: dict[str, tuple[Split, Features]] = {
    "gemma3": (_rows, _gemma3),
    "llava": (_rows, _llava),
    "mistral3": (_rows, _mistral3),
    "qwen2_5_vl": (_patches, _qwen2_5_vl),
    "qwen3_vl": (_patches, _qwen3_vl),
    "qwen3_vl_moe": (_patches, _qwen3_vl),
}


class ImageEmbedding:
    """The input embeddings of a request's prompt, made a piece per `advance`: one image's features each,
    then the merge."""

    def __init__(self, vision: Vision, inputs: ImageInputs) -> None:
        self.model = vision.model
        self.family = vision.family
        self.inputs = inputs
        split, self.per_image = PER_IMAGE.get(vision.model.config.model_type, (None, None))
        self.images: list[Arrays] = split(inputs.arrays) if split is not None else []
        self.features: list[mx.array] = []

    def advance(self) -> VisionInputs | None:
        """Run the next piece; the prompt's tokens and input embeddings once the last one is done."""
        if self.per_image is not None and len(self.features) < len(self.images):
            image = {k: mx.array(v) for k, v in self.images[len(self.features)].items()}
            features = self.per_image(self.model, image)
            mx.eval(features)
            self.features.append(features)
            return None
        pixels = self.inputs.arrays["pixel_values"]
        ids = mx.array(self.inputs.tokens)[None]
        extra = {k: mx.array(v) for k, v in self.inputs.arrays.items() if k not in ("attention_mask", "pixel_values")}
        deepstack = None
        if self.features:
            joined = mx.concatenate(self.features)
            if self.per_image is _qwen3_vl:  # mlx-vlm's merge of cached features leaves the deepstack ones out
                joined, deepstack = joined[:, 0], joined[:, 1:].transpose(1, 0, 2)
            extra["cached_image_features"] = joined
        merged = input_embeddings(self.family, self.model, ids, mx.array(pixels), mask=mx.ones(ids.shape), **extra)
        if deepstack is not None:
            merged.deepstack_visual_embeds = deepstack
        embeddings = merged.inputs_embeds[0]
        positioned = decoder(self.family, self.model, merged)
        mx.eval(embeddings, positioned.arrays() if positioned else [])
        return VisionInputs(self.inputs.tokens, embeddings, positioned)
