"""A request's image features, made on the engine thread a piece per engine turn.

The vision tower is MLX, so it runs on the engine thread; run over every image of a request at once it is one
long step (a real Gemma 3 tower takes a large share of a second per image on a laptop), and every text stream
of every model waits for it. So where the family's tower takes its images one by one, each engine turn runs
it over one image (tower and projector); a last piece puts the features at the image tokens of the prompt's
input embeddings, through mlx-vlm's own `get_input_embeddings` (its `cached_image_features`), so the merge is
the family's. A family not listed in PER_IMAGE (Qwen2.5-VL, Qwen3-VL, Mistral 3, LLaVA 1.5 and 1.6: their towers take
all of a request's images as one input, patches of every image in one sequence or padded side by side) runs
`get_input_embeddings` whole, in one piece. Either way the merge is given the processor's other outputs
(Qwen's `image_grid_thw`, Pixtral's `image_sizes`), and the family picks the decoder that reads the result
(`vision_families.decoder`: Qwen's positions and deepstack features come out of the merge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx

from shim.engine.vision import ImageInputs, Vision, VisionInputs
from shim.engine.vision_families import decoder, input_embeddings

Features = Callable[[Any, mx.array], mx.array]  # (mlx-vlm's model, pixel_values of one image) -> its features


def _gemma3(model: Any, pixels: mx.array) -> mx.array:
    """As Gemma 3's get_input_embeddings computes them (channels last, in the projector's dtype)."""
    projector = model.multi_modal_projector
    pixels = pixels.transpose(0, 2, 3, 1).astype(projector.mm_input_projection_weight.dtype)
    hidden, _, _ = model.vision_tower(pixels, output_hidden_states=True)
    return projector(hidden)


# model_type -> one image's features, for the families whose pixel_values hold one image per row and whose
# get_input_embeddings takes the rows' features back as `cached_image_features`.
PER_IMAGE: dict[str, Features] = {"gemma3": _gemma3}


class ImageEmbedding:
    """The input embeddings of a request's prompt, made a piece per `advance`: one image's features each,
    then the merge."""

    def __init__(self, vision: Vision, inputs: ImageInputs) -> None:
        self.model = vision.model
        self.family = vision.family
        self.inputs = inputs
        self.per_image = PER_IMAGE.get(vision.model.config.model_type)
        self.features: list[mx.array] = []

    def advance(self) -> VisionInputs | None:
        """Run the next piece; the prompt's tokens and input embeddings once the last one is done."""
        pixels = self.inputs.arrays["pixel_values"]
        if self.per_image is not None and len(self.features) < len(pixels):
            i = len(self.features)
            features = self.per_image(self.model, mx.array(pixels[i : i + 1]))
            mx.eval(features)
            self.features.append(features)
            return None
        ids = mx.array(self.inputs.tokens)[None]
        extra = {k: mx.array(v) for k, v in self.inputs.arrays.items() if k not in ("attention_mask", "pixel_values")}
        if self.features:
            extra["cached_image_features"] = mx.concatenate(self.features)
        merged = input_embeddings(self.family, self.model, ids, mx.array(pixels), mask=mx.ones(ids.shape), **extra)
        embeddings = merged.inputs_embeds[0]
        positioned = decoder(self.family, self.model, merged)
        mx.eval(embeddings, positioned.arrays() if positioned else [])
        return VisionInputs(self.inputs.tokens, embeddings, positioned)
