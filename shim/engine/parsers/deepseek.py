"""DeepSeek's tool calls (V3, R1 and its distills), which mlx-lm has no parser for.

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
    ```json
    {"city": "Paris"}
    ```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>

V3.1 and later drop the `function` type and the code fence (`<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}`, as
Ollama's deepseek3 parser reads them); both are read. The block is collected by the start/end-marker
collector (`collector.py`); this is its parse function. R1's template ends the prompt with
`<think>`, so its output starts inside the thinking (`output.py` sees that in the prompt).
"""

from __future__ import annotations

import json
import re
from typing import Any

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_tool_calls(text: str, tools: Any = None) -> list[dict[str, Any]]:
    """Every `<｜tool▁call▁begin｜>...<｜tool▁call▁end｜>` of the block; raises ValueError on anything else."""
    calls = []
    rest = text.strip()
    while rest:
        if not rest.startswith(CALL_BEGIN) or CALL_END not in rest:
            raise ValueError(f"not a DeepSeek tool call: {rest!r}")
        call, _, rest = rest[len(CALL_BEGIN) :].partition(CALL_END)
        rest = rest.strip()
        head, sep, body = call.partition(SEP)
        if not sep:
            raise ValueError(f"no {SEP} in {call!r}")
        if head.strip() == "function":  # V3/R1: the type, then the name on the line before the fenced JSON
            name, _, body = body.partition("\n")
        else:
            name = head
        fenced = _FENCE.match(body)
        arguments = json.loads(fenced.group(1) if fenced else body)
        calls.append({"name": name.strip(), "arguments": arguments})
    if not calls:
        raise ValueError("no tool call")
    return calls
