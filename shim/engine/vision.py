"""Images for the vision families, through mlx-vlm, on the weights mlx-lm already holds.

A vision model loads once through mlx-lm, as every model does, so text requests keep its batching and prompt
cache. mlx-vlm then adds only what text lacks: the family's image processor (transformers' PIL backend: no
torch) and the vision tower with its projector, whose decoder is mlx-lm's (its very module, or for Qwen its
arrays: one copy of the weights). A request with images is prepared here, on the prep pool: the prompt is
rendered with the family's image marker per image before the message's text (the processor expands it into
the model's image tokens) and the processor's outputs (pixels, and Qwen's grid or Pixtral's image sizes)
stay numpy; on the engine thread the tower's features are put at the image tokens of the prompt's input
embeddings (`vision_tower`, a piece per engine turn), which the family's decoder reads instead of its token
embeddings (`vision_lane`).

What differs per family (the marker, the processor's call, which decoder reads the embeddings: Qwen's 3-D
rotary positions need mlx-vlm's decoder on mlx-lm's weights) is in `vision_families`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_reduce

from shim.engine.image_decode import decode_image, decode_size
from shim.engine.prompt import render_prompt
from shim.engine.types import CompletionRequest, Message
from shim.engine.vision_families import FAMILIES, Family, marker, share_decoder
from shim.errors import Kind, ShimError

TOO_LONG = "the input length exceeds the context length"
# Ollama's runner refuses images for a model without a vision tower in these words (clients match them).
NO_VISION = "this model is missing data required for image input"
# Processors run one at a time: a tokenizer is not for two threads at once, and _numpy_outputs swaps a module's
# function meanwhile.
_PROCESSING = threading.Lock()


@dataclass
class ImageInputs:
    """A request with images made ready on the prep pool: its prompt with each image's tokens expanded, and
    the processor's other outputs (pixel_values, and whatever else a family's processor gives) as numpy."""

    tokens: list[int]
    arrays: dict[str, np.ndarray]


@dataclass
class VisionInputs:
    """A request's prompt with its image tokens expanded, and the decoder's input embeddings for it."""

    tokens: list[int]
    embeddings: mx.array  # (len(tokens), hidden)
    decoder: Any = None  # the model to run them on where not the text model's (vision_families.PositionedDecoder)


class Vision:
    """The vision half of a loaded model: mlx-vlm's model (its decoder is the text model's) and processor."""

    def __init__(self, model: Any, processor: Any, family: Family) -> None:
        self.model = model
        self.processor = processor
        self.family = family
        # The text the processor replaces by an image's tokens (Gemma 3: <start_of_image>).
        self.marker = marker(family, processor)
        self.fits = decode_size(processor)  # what a JPEG is decoded at no less than (image_decode.py)

    @property
    def nbytes(self) -> int:
        """The tower's and projector's weights (the decoder's are counted with the text model)."""
        own = {k: v for k, v in self.model.parameters().items() if k != "language_model"}
        return int(tree_reduce(lambda total, array: total + array.nbytes, own, 0) or 0)

    def preprocess(self, req: CompletionRequest, tokenizer: Any, num_ctx: int) -> ImageInputs:
        """On a prep pool thread (PIL and numpy, no MLX): decode the images, render the prompt with their
        markers, run the processor; bad image data is the client's error. The tower runs on the engine thread
        (vision_tower.py)."""
        assert req.messages is not None
        pictures = [decode_image(data, self.fits) for m in req.messages for data in m.images]
        text = render_prompt(replace(req, messages=_marked(req.messages, self.marker)), tokenizer, num_ctx)
        with _numpy_outputs(self.processor):
            arrays = dict(self._process(text, pictures, tokenizer))
        if self.family.prepare is not None:
            arrays.update(self.family.prepare(self.processor, arrays))
        tokens = [int(t) for t in arrays.pop("input_ids").reshape(-1)]
        if len(tokens) > num_ctx:
            raise ShimError(TOO_LONG, Kind.BAD_INPUT)
        return ImageInputs(tokens, arrays)

    def _process(self, text: str, pictures: list[Any], tokenizer: Any) -> Any:
        """The rendered prompt holds its special tokens: the processor's tokenizer must add none (or, where the
        processor cannot be told, its BOS is taken off the text, as the tokenizer puts it back)."""
        if self.family.special_tokens_kwarg:
            return self.processor(text=text, images=pictures, add_special_tokens=False, return_tensors="np")
        return self.processor(text=text.removeprefix(tokenizer.bos_token or ""), images=pictures, return_tensors="np")


def load_vision(model_dir: Path, text_model: Any) -> Vision:
    """mlx-vlm's model of `model_dir` with its decoder replaced by `text_model`'s before any of its own
    decoder weights are read (mlx-vlm loads lazily), so only the tower and projector reach memory."""
    from mlx_vlm.utils import load_model, load_processor

    model = load_model(model_dir, lazy=True)
    if mx.default_device() == mx.cpu:  # as the text model: float32 runs several times faster on the CPU
        model.set_dtype(mx.float32)  # floating weights only: quantized ones stay packed
    config: Any = model.config
    family = FAMILIES[config.model_type]
    share_decoder(family, model, text_model)
    mx.eval(model.parameters())
    return Vision(model, load_processor(model_dir, add_detokenizer=False), family)


def _marked(messages: list[Message], marker: str) -> list[Message]:
    """Each image becomes `marker` before its message's text. A message of images alone (OpenAI's content
    parts arrive as one message each, as in Ollama) joins its same-role neighbour, its markers first, so a
    template that insists on alternating roles (Gemma's) sees one turn; the images keep their order."""
    out: list[Message] = []
    for m in messages:
        prev = out[-1] if out else None
        alone = bool(m.images) and not m.content
        joins = prev is not None and prev.role == m.role and not (prev.tool_calls or m.tool_calls)
        if prev is not None and joins and (alone or (prev.content and not prev.content.replace(marker, ""))):
            marks = prev.content.count(marker) + len(m.images)
            out[-1] = replace(prev, content=marker * marks + prev.content.replace(marker, "") + m.content)
        else:
            out.append(replace(m, content=marker * len(m.images) + m.content, images=[]))
    return out


@contextlib.contextmanager
def _numpy_outputs(processor: Any) -> Iterator[None]:
    """mlx-vlm's processors end with its `to_mlx`, which makes MLX arrays on the calling thread (a prep pool
    thread here, which must never call MLX): meanwhile their module's `to_mlx` is the same conversion into
    numpy, and the engine thread makes the MLX arrays."""
    with _PROCESSING:
        module = sys.modules.get(type(processor).__module__)
        names = vars(module) if module is not None else {}
        original = names.get("to_mlx")
        if original is not None:
            names["to_mlx"] = _to_numpy
        try:
            yield
        finally:
            if original is not None:
                names["to_mlx"] = original


def _to_numpy(data: dict[str, Any]) -> dict[str, Any]:
    """mlx-vlm's `to_mlx`, into numpy: lists become arrays where they can."""
    out = dict(data)
    for key, value in data.items():
        if isinstance(value, list):
            with contextlib.suppress(ValueError, TypeError):
                out[key] = np.array(value)
    return out
