"""What the engine reports about itself for `/metrics`, read without locking its worker thread.

The worker writes plain ints (at a prefill, never per token) and the reader on the event loop reads them
whole: under the GIL an int attribute or a dict's size is read atomically, so a scrape costs the worker
nothing and at worst sees a count one step old.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PromptCacheCounters:
    """Totals since start, added to by the worker thread at each prefill."""

    hits: int = 0  # prefills that started from a cached prefix
    tokens: int = 0  # prompt tokens whose keys and values came from the prompt cache, not prefill


@dataclass(frozen=True)
class EngineStats:
    queued: int = 0  # requests submitted and not yet started (what OLLAMA_MAX_QUEUE bounds)
    running: int = 0  # sequences decoding now, all models together
    prompt_cache_hits: int = 0
    prompt_cache_tokens: int = 0
