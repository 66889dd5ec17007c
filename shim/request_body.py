"""A request body parsed into what a handler works with (JSON decoding, binding, images' base64), off the
event loop when the body is large.

A chat with eight phone photos is a ~24 MB body: decoding and binding it takes ~100 ms of CPU, and done on the
event loop it holds every other stream's tokens that long. Such a body is parsed on a worker thread
(`asyncio.to_thread`, as the handlers' disk work is). The GIL still runs one thread at a time, but the parse
is a series of C calls (UTF-8 check, `json.loads`, the surrogate-escape scan, one base64 decode per image) with
Python between them, where the loop gets its turn: the loop then waits for the longest single call (`json.loads`,
~20 ms at 24 MB here) instead of the whole parse (scripts/bench_body_decode.py measures both).

A small body is parsed inline: the hop to a thread costs ~60 µs on an idle core (~100-200 µs on this busy 2-core
machine), while decoding and binding a 256 KiB body costs ~0.75 ms (an image body; text costs less). Below the
threshold the loop is held under a millisecond; above it the hop is at most a tenth of the work it moves.
Parsing stays one synchronous function per adapter, so every error it raises (Ollama's exact texts and statuses)
reaches the handler unchanged, from either side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
OFF_LOOP_BYTES = 256 << 10  # bodies this large or larger are parsed on a worker thread


async def parsed(body: bytes, parse: Callable[[bytes], T]) -> T:
    """`parse(body)`: inline for a body under OFF_LOOP_BYTES, on a worker thread for a larger one."""
    if len(body) < OFF_LOOP_BYTES:
        return parse(body)
    return await asyncio.to_thread(parse, body)
