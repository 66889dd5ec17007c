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

import mlx.core as mx

from shim.engine.vision import ImageInputs, Vision, VisionInputs
from shim.engine.vision_families import Arrays, decoder, input_embeddings


class ImageEmbedding:
    """The input embeddings of a request's prompt, made a piece per `advance`: one image's features each,
    then the merge."""

    def __init__(self, vision: Vision, inputs: ImageInputs) -> None:
        self.model = vision.model
        self.family = vision.family
        self.inputs = inputs
        split = self.family.split
        self.images: list[Arrays] = split(inputs.arrays) if split is not None else []
        self.features: list[mx.array] = []

    def advance(self) -> VisionInputs | None:
        """Run the next piece; the prompt's tokens and input embeddings once the last one is done."""
        per_image = self.family.features
        if per_image is not None and len(self.features) < len(self.images):
            image = {k: mx.array(v) for k, v in self.images[len(self.features)].items()}
            features = per_image(self.model, image)
            mx.eval(features)
            self.features.append(features)
            return None
        pixels = self.inputs.arrays["pixel_values"]
        ids = mx.array(self.inputs.tokens)[None]
        extra = {k: mx.array(v) for k, v in self.inputs.arrays.items() if k not in ("attention_mask", "pixel_values")}
        deepstack = None
        if self.features:
            joined = mx.concatenate(self.features)
            if self.family.deepstack:  # mlx-vlm's merge of cached features leaves the deepstack ones out
                joined, deepstack = joined[:, 0], joined[:, 1:].transpose(1, 0, 2)
            extra["cached_image_features"] = joined
        merged = input_embeddings(self.family, self.model, ids, mx.array(pixels), mask=mx.ones(ids.shape), **extra)
        if deepstack is not None:
            merged.deepstack_visual_embeds = deepstack
        embeddings = merged.inputs_embeds[0]
        positioned = decoder(self.family, self.model, merged)
        mx.eval(embeddings, positioned.arrays() if positioned else [])
        return VisionInputs(self.inputs.tokens, embeddings, positioned)
