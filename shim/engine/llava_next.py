"""LLaVA 1.6 (`llava_next`)'s image features, packed as the model was trained on them ("anyres").

Its image processor cuts an image into a grid of tower-sized tiles (the grid picked from the model's
`image_grid_pinpoints` by the image's size) after one tile of the whole image, and its processor expands
`<image>` into as many tokens as the packed features have: the whole image's patches, then the grid's patches
as one picture with the padding the resize added cut off again, each row of it closed by the model's
`image_newline` vector. mlx-vlm 0.7.10's `llava_next` model has the tower, projector and `image_newline`, but its
merge puts each tile's features whole at one `<image>` token each, a count the processor never makes; the
packing here is transformers' (`LlavaNextModel.pack_image_features`, `unpad_image`), in MLX.

The grid is worked out on the prep pool (`grids`, numpy: the processor's own `select_best_resolution`) and
travels with the processor's outputs as `image_grid`; the features are made on the engine thread
(`input_embeddings`, called where mlx-vlm's `get_input_embeddings` is for other families).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np


def grids(processor: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each image's tile grid (rows, columns): the resolution the processor picked for its size, in tiles (the
    processor's own rule, which its token count follows)."""
    from transformers.image_processing_utils import select_best_resolution

    pinpoints = processor.image_processor.image_grid_pinpoints
    tile_height, tile_width = arrays["pixel_values"].shape[-2:]
    best = [select_best_resolution((int(h), int(w)), pinpoints) for h, w in arrays["image_sizes"]]
    return {"image_grid": np.array([[h // tile_height, w // tile_width] for h, w in best], dtype=np.int64)}


def input_embeddings(
    model: Any, input_ids: mx.array, pixel_values: mx.array, image_sizes: mx.array, image_grid: mx.array, **_: Any
) -> Any:
    """The prompt's token embeddings with each image's packed features at its `<image>` tokens, in order."""
    from mlx_vlm.models.base import InputEmbeddingsFeatures

    embeddings = model.language_model.model.embed_tokens(input_ids)
    sizes, grid = np.array(image_sizes).tolist(), np.array(image_grid).tolist()
    features = mx.concatenate([_image(model, pixel_values[i], sizes[i], grid[i]) for i in range(len(grid))])
    positions = np.flatnonzero(np.array(input_ids[0]) == model.config.image_token_index)
    if len(positions) != features.shape[0]:
        raise ValueError(f"{len(positions)} image tokens for {features.shape[0]} image features")
    merged = embeddings[0]
    merged[mx.array(positions)] = features.astype(merged.dtype)
    return InputEmbeddingsFeatures(inputs_embeds=merged[None])


def _image(model: Any, tiles: mx.array, size: list[int], grid: list[int]) -> mx.array:
    """One image's features: the whole image's patches, then the grid's, unpadded, a newline after each row."""
    rows, columns = grid
    tiles = tiles[: 1 + rows * columns]  # the processor pads every image to the most tiles of the request
    projector = model.multi_modal_projector
    *_, hidden = model.vision_tower(tiles.transpose(0, 2, 3, 1).astype(projector.linear_1.weight.dtype), True)
    selected = hidden[model.vision_feature_layer]
    if model.vision_feature_select_strategy == "default":
        selected = selected[:, 1:]  # the CLS token
    features = projector(selected)
    vision = model.config.vision_config
    side, width = vision.image_size // vision.patch_size, features.shape[-1]
    picture = features[1:].reshape(rows, columns, side, side, width).transpose(0, 2, 1, 3, 4)
    picture = _unpad(picture.reshape(rows * side, columns * side, width), size)
    newline = mx.broadcast_to(model.image_newline.astype(picture.dtype), (picture.shape[0], 1, width))
    return mx.concatenate([features[0], mx.concatenate([picture, newline], axis=1).reshape(-1, width)])


def _unpad(picture: mx.array, size: list[int]) -> mx.array:
    """transformers' `unpad_image`: the rows or columns the resize padded the image with, cut off."""
    height, width = size
    current_height, current_width = picture.shape[:2]
    if width / height > current_width / current_height:
        padding = (current_height - int(round(height * (current_width / width), 7))) // 2
        return picture[padding : current_height - padding]
    padding = (current_width - int(round(width * (current_height / height), 7))) // 2
    return picture[:, padding : current_width - padding]
