"""Image bytes decoded for a family's processor, at no more pixels than it keeps.

A phone photo is a 12-megapixel JPEG; a processor that resizes every image to a fixed size (Gemma 3: 896×896,
the tiny test model 224×224) throws nearly all of them away. Decoding them all costs ~80 ms per photo here, and
the processor's copies and resize of the full image ~95 ms more: on the prep pool that is CPU (and, between
PIL's and numpy's C calls, the GIL) the engine thread and the event loop wait for, for over a second with eight
photos. libjpeg can decode at 1/2, 1/4 or 1/8 scale almost for the cost of the smaller image (PIL's `draft`):
asked for the processor's size, it picks the largest reduction that still covers it in both dimensions, and
the processor's own resize goes on as before, from fewer pixels (a 12 MP photo for Gemma 3: 2016×1512, a
quarter of them, ~100 ms instead of ~275 ms here). libjpeg's scaling then does part of the filtering: the
pixels the tower sees differ from the full decode's by under a level of 255 on average, up to 16 at the
sharpest edges (tests/test_vision.py states the tolerance). Pillow's `thumbnail` asks for twice the size (its
`reducing_gap`) to differ less; for Gemma 3 that decodes a 12 MP photo whole, which is what this is for.
Only for processors that resize to a fixed size: one that tiles or keeps a resolution of its own (pan and
scan, LLaVA-NeXT's grid, Qwen's and Pixtral's pixel budgets) gets every pixel. Formats but JPEG decode whole.
"""

from __future__ import annotations

import io
from typing import Any

from shim.errors import Kind, ShimError


def decode_size(processor: Any) -> tuple[int, int] | None:
    """The (width, height) a JPEG for `processor` must cover: the fixed size it resizes every image to; None
    for a processor without one."""
    images = getattr(processor, "image_processor", None)
    size = getattr(images, "size", None)
    if size is None or getattr(images, "do_pan_and_scan", False) or getattr(images, "image_grid_pinpoints", None):
        return None
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    width, height = get("width"), get("height")
    return (width, height) if isinstance(width, int) and isinstance(height, int) else None


def decode_image(data: bytes, fits: tuple[int, int] | None = None) -> Any:
    """`data` as an RGB PIL image; a JPEG at the smallest of its scaled decodes that covers `fits` (width,
    height) where given. Bad image data is the client's error."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        if fits is not None:
            image.draft(image.mode, fits)  # a no-op for every format but JPEG
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ShimError(f"failed to process inputs: {e}", Kind.BAD_INPUT) from None
    return image.convert("RGB")
