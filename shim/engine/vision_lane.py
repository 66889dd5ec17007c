"""A vision model's batch: its text requests batch as any model's, and requests with images are prefilled one
at a time beside them, on the same engine steps, then decode with them.

mlx-lm's BatchGenerator takes token ids only, so a prompt with images cannot be prefilled in it: it runs in a
lane of its own on the same decoder weights (mlx-lm's module, or for Qwen mlx-vlm's decoder holding mlx-lm's
arrays with the prompt's 3-D positions: `vision_families`), one piece of work per engine step, so text streams
of the same model wait at most one piece between two tokens: its images arrive decoded and processed on the
prep pool (`vision.ImageInputs`); the tower runs over one image per step (`vision_tower`; LLaVA 1.6's in
one piece), then its prompt's input embeddings (image features at the image tokens) are
prefilled on that decoder in slices bounded in time (`prefill`, paced as the text batch's). From then on its
cache holds the images and it feeds token ids: on mlx-lm's decoder, with text sequences running and room
among them, it joins the BatchGenerator with that cache and decodes in the batch's forward pass, and the
lane takes the next request with images; otherwise (alone, or on Qwen's positioned decoder) it decodes in
the lane one token per step on mlx-lm's generate_step, as a lone text request does. Its client leaving ends
it at the next step. Its KV cache holds image features under placeholder token ids, so it never enters the
prefix cache (a later prompt with the same ids but another image must not reuse it: `Sequence.reusable`),
and its context is never shifted (a shift re-prefills from token ids).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import mlx.core as mx

from shim.engine.batch import ModelBatch, Sequence
from shim.engine.mlx_lm_api import generate_step, make_prompt_cache
from shim.engine.prefill import PromptFill
from shim.engine.stats import PromptCacheCounters
from shim.engine.types import CompletionRequest
from shim.engine.vision import ImageInputs, Vision, VisionInputs
from shim.engine.vision_tower import ImageEmbedding
from shim.errors import ShimError

log = logging.getLogger("mlx_shim")

VISION = -2  # the key in ModelBatch.sequences of the sequence with images
Steps = Generator[tuple[int, mx.array], None, None]  # mlx-lm's generate_step


def has_images(req: CompletionRequest) -> bool:
    return any(m.images for m in req.messages or ())


@dataclass
class _Seeing:
    sequence: Sequence
    embedding: ImageEmbedding
    cache: list[Any]
    inputs: VisionInputs | None = None  # once the embedding's last piece is done
    fill: PromptFill | None = None
    steps: Steps | None = None


class VisionBatch(ModelBatch):
    """ModelBatch plus the lane for one request with images (kept in `sequences` under VISION, so the engine
    sees it as running: keep_alive, unload and shutdown treat it as any request)."""

    def __init__(
        self,
        model: Any,
        vision: Vision,
        *,
        num_parallel: int,
        cache_bytes: int,
        prefill_group: int = 8,
        counters: PromptCacheCounters | None = None,
    ) -> None:
        super().__init__(
            model, num_parallel=num_parallel, cache_bytes=cache_bytes, prefill_group=prefill_group, counters=counters
        )
        self.vision = vision
        self.seeing: _Seeing | None = None

    def has_vision_room(self) -> bool:
        return self.seeing is None

    def admit_vision(self, seq: Sequence, inputs: ImageInputs) -> None:
        seq.context = list(inputs.tokens)
        seq.reusable = False  # its cache holds image features under placeholder ids: never a later prompt's
        seq.completion.restart()
        self.seeing = _Seeing(seq, ImageEmbedding(self.vision, inputs), make_prompt_cache(self.model))
        self.sequences[VISION] = seq

    def admit(self, seq: Sequence) -> None:
        with self._aside():
            super().admit(seq)

    def step(self) -> list[Sequence]:
        with self._aside():
            ended = super().step()
        if self.seeing is not None:
            ended += self._see()
            self._measure()
        return ended

    def fail(self, error: ShimError) -> list[Sequence]:
        self.seeing = None
        return super().fail(error)

    def close(self) -> None:
        self.seeing = None
        super().close()

    def _measure(self) -> None:
        super()._measure()
        if self.seeing is not None:
            self.kv_bytes += sum(c.nbytes for c in self.seeing.cache)

    @contextlib.contextmanager
    def _aside(self) -> Iterator[None]:
        """The text batch's own methods never see the sequence with images."""
        seq = self.sequences.pop(VISION, None)
        try:
            yield
        finally:
            if seq is not None:
                self.sequences[VISION] = seq

    def _see(self) -> list[Sequence]:
        """One step of the request with images: a piece of its embedding, a prefill slice, or one token."""
        assert self.seeing is not None
        seeing, seq = self.seeing, self.seeing.sequence
        if seq.listener.cancelled.is_set():
            log.info("generation cancelled: client disconnected")
            self._end_seeing()
            seq.listener.put(None)
            return [seq]
        if seeing.fill is None:
            seeing.inputs = inputs = seeing.embedding.advance()
            if inputs is not None:  # every position but the last, which generate_step is given for its logits
                prompt, embeddings = inputs.tokens[:-1], inputs.embeddings[:-1]
                decoder = inputs.decoder or self.model
                seeing.fill = PromptFill(decoder, seeing.cache, prompt, self.pacer, embeddings)
            return []
        if not seeing.fill.done:
            seeing.fill.advance()
            return []
        if seeing.steps is None:
            assert seeing.inputs is not None
            if self._joins_batch(seeing.inputs, seq):
                self._end_seeing()
                if self.solo is not None:  # the lone text sequence goes into the batch first, as on admission
                    self._join_batch()
                self._insert(seq, seq.context, (seeing.cache, seq.context[-1:]))
                return []
            seeing.steps = self._decode(seq, seeing.inputs, seeing.cache)
        token, logprobs = next(seeing.steps)
        seq.context.append(token)
        if seq.completion.feed(token, logprobs):
            self._end_seeing()
            self._finish(seq)
            return [seq]
        return []

    def _joins_batch(self, inputs: VisionInputs, seq: Sequence) -> bool:
        """Its prompt prefilled, a request with images decodes in the text batch when there is one with room
        and mlx-lm's decoder reads it (not Qwen's positioned one): its cache holds the image features, and
        from there on it feeds token ids like any sequence, so one forward pass per step serves the text
        streams and it (in the lane, each step makes two), and the lane is free for the next request with
        images. Alone it stays in the lane, on generate_step (faster than a batch of one)."""
        with self._aside():
            return inputs.decoder is None and bool(self.sequences) and self.has_room(seq.exclusive)

    def _decode(self, seq: Sequence, inputs: VisionInputs, cache: list[Any]) -> Steps:
        """generate_step from the prefilled cache, given the prompt's last position for its logits, on the
        decoder the family reads images with (mlx-lm's, or Qwen's positioned one)."""
        last = len(inputs.tokens) - 1
        processors = seq.processors
        if processors and last:  # generate_step shows processors only the tokens it was given
            prefix = mx.array(inputs.tokens[:last])
            processors = [_after(prefix, p) for p in processors]
        return generate_step(
            mx.array(inputs.tokens[last:]), inputs.decoder or self.model, input_embeddings=inputs.embeddings[last:],
            max_tokens=-1, sampler=seq.sampler, logits_processors=processors, prompt_cache=cache,
        )  # fmt: skip

    def _end_seeing(self) -> None:
        if self.seeing is not None and self.seeing.steps is not None:
            self.seeing.steps.close()
        self.seeing = None
        self.sequences.pop(VISION, None)


def _after(prefix: mx.array, processor: Any) -> Any:
    return lambda tokens, logits: processor(mx.concatenate([prefix, tokens]), logits)
