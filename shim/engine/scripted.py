"""Test only: answers scripted token by token, through the same per-token pipeline a sampled token takes.

When the server starts with MLX_SHIM_TEST_SCRIPTS naming a JSON file `{"KEY": [token id, ...], ...}`, a
request whose last message (or prompt) is exactly KEY generates those tokens, whatever the model computes:
a logits processor that runs after every other leaves only the scripted token possible, so the sampler,
the batch, the detokenizer, stop strings and end tokens, the thinking split, the family's call format and
the protocol writers all run as for any answer. After the script comes the tokenizer's EOS. Without the
variable (any real server) there are no scripts and nothing here runs; no request can turn it on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx

from shim.engine.types import CompletionRequest

Scripts = dict[str, list[int]]
Processor = Callable[[mx.array, mx.array], mx.array]


def load_scripts(path: str) -> Scripts:
    """The scripts file named at start (none: empty). A broken file stops the start: it is a test's error."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {str(key): [int(token) for token in tokens] for key, tokens in data.items()}


def scripted_processors(scripts: Scripts, req: CompletionRequest, prompt: list[int], tokenizer: Any) -> list[Processor]:
    """The processor that forces the request's script, if it has one."""
    if not scripts:
        return []
    if req.messages:
        key = req.messages[-1].content
    else:
        key = req.raw_prompt if req.raw_prompt is not None else (req.infill.prefix if req.infill else "")
    script = scripts.get(key)
    if script is None:
        return []
    end = int(next(iter(tokenizer.eos_token_ids)))
    start = len(prompt)

    def force(tokens: mx.array, logits: mx.array) -> mx.array:
        # The processors see the whole context (prompt, then what was generated): its length says which
        # position is being sampled, however the scheduler restarts or batches the sequence.
        at = tokens.size - start
        token = script[at] if 0 <= at < len(script) else end
        return mx.where(mx.arange(logits.shape[-1]) == token, 0.0, -math.inf).astype(logits.dtype)[None]

    return [force]
