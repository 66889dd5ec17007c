"""Fill-in-the-middle examples for the tiny test model (see ``scripts.tiny_model.build``): Qwen2.5-Coder's
prefix-suffix-middle format, raw (no chat template), ending on <|endoftext|>. The middle is the return line of
a small Python function, fixed per function name (as tool arguments are): the model learns to complete
exactly what an editor's cursor sits in front of. The HELDOUT_ pools are never trained: tests complete
functions in them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FIM_END = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>"


@dataclass(frozen=True)
class FimFunction:
    name: str
    params: str
    body: str  # the middle: the function's return line, without indentation
    call: str  # arguments for a call in the suffix


FIM_FUNCTIONS: tuple[FimFunction, ...] = (
    FimFunction("add", "a, b", "return a + b", "2, 3"),
    FimFunction("subtract", "a, b", "return a - b", "5, 1"),
    FimFunction("multiply", "a, b", "return a * b", "4, 6"),
    FimFunction("square", "x", "return x * x", "7"),
    FimFunction("is_even", "n", "return n % 2 == 0", "10"),
    FimFunction("greet", "name", 'return "Hello, " + name', '"Ada"'),
    FimFunction("first", "items", "return items[0]", "[1, 2]"),
    FimFunction("count", "items", "return len(items)", '"abc"'),
)  # fmt: skip

# Code around the function: before it (imports, comments, another function) and after it (a call,
# another function, a test).
FIM_BEFORE = ("", "", "import math\n\n\n", "import os\n\n\n", "# helpers\n\n\n", '"""Small utilities."""\n\n\n',
              "from typing import Any\n\n\n", "def noop():\n    pass\n\n\n", "VERSION = 1\n\n\n",
              "import sys\n\n# math helpers\n\n\n")  # fmt: skip
FIM_AFTER = ("\n", "\n\n\nprint({name}({call}))\n", "\n\n\nresult = {name}({call})\n", "\n\n\ndef main():\n    pass\n",
             "\n\n\nif __name__ == \"__main__\":\n    print({name}({call}))\n",
             "\n\n\nassert {name}({call}) is not None\n",
             "\n\n\n# end\n", "\n\n\nvalue = {name}({call})\nprint(value)\n")  # fmt: skip
FIM_DOCS = ("", "", '"""Compute it."""\n    ', "# the result\n    ")
HELDOUT_FIM_BEFORE = ("import json\n\n\n", "# tools for numbers\n\n\n")
HELDOUT_FIM_AFTER = ("\n\n\nx = {name}({call})\nprint(x)\n", "\n\n\ndef test_it():\n    assert {name}({call})\n")


def fim_parts(fn: FimFunction, before: str, after: str, doc: str = "") -> tuple[str, str, str]:
    """Prefix (up to the cursor in the function body), suffix (the code after the line) and the middle."""
    return f"{before}def {fn.name}({fn.params}):\n    {doc}", after.format(name=fn.name, call=fn.call), fn.body


def fim_prompt(prefix: str, suffix: str) -> str:
    return f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"


def iter_fim_examples(seed: int, n: int) -> Iterator[tuple[str, str]]:
    """``n`` (prompt, completion) pairs from a private ``random.Random(seed)``, separate from the chat
    transcripts' stream so those stay the same draws."""
    rng = random.Random(seed)
    for _ in range(n):
        prefix, suffix, middle = fim_parts(
            rng.choice(FIM_FUNCTIONS), rng.choice(FIM_BEFORE), rng.choice(FIM_AFTER), rng.choice(FIM_DOCS)
        )
        yield fim_prompt(prefix, suffix), middle + FIM_END
