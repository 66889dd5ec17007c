"""What each family's prompt format does with tools, tool results and thinking, written from the families'
documented formats (their model cards and Ollama's templates for the same families), for tests/test_families.py
to check the server's rendered prompts against. Marker strings: the test's tool describes itself as
WEATHER-DESCRIPTION (its argument as CITY-DESCRIPTION), the system message is SYS-TEXT, the user's USER-TEXT, a
tool result SUNNY-42.
"""

from __future__ import annotations

from dataclasses import dataclass

_QWEN_RESULT = r"<\|im_start\|>user\n<tool_response>\nSUNNY-42\n</tool_response><\|im_end\|>"
_LLAMA_RESULT = r'<\|start_header_id\|>ipython<\|end_header_id\|>\n\n"SUNNY-42"<\|eot_id\|>'
_LLAMA_TOOLS = ("<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n", "SYS-TEXT<|eot_id|>",
                "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions", "WEATHER-DESCRIPTION",
                "CITY-DESCRIPTION", "USER-TEXT<|eot_id|>")  # fmt: skip
_QWEN_TOOLS = ("<|im_start|>system\nSYS-TEXT", "# Tools", "<tools>", "WEATHER-DESCRIPTION", "CITY-DESCRIPTION",
               "</tools>", "<|im_end|>\n<|im_start|>user\nUSER-TEXT<|im_end|>")  # fmt: skip
_MISTRAL_CALL = r'\[TOOL_CALLS\] ?\[\{"name": "get_weather", "arguments": \{"city": "Paris"\}, "id": "(?P<id>\w{9})"'
_HARMONY_RESULT = (
    r"<\|start\|>functions\.get_weather to=assistant<\|channel\|>commentary<\|message\|>"
    r"\"SUNNY-42\"<\|end\|>"
)
_MISTRAL_RESULT = r'\[TOOL_RESULTS\] ?\{"content": SUNNY-42, "call_id": "(?P<id>\w{9})"\}\[/TOOL_RESULTS\]'


@dataclass(frozen=True)
class Format:
    capabilities: tuple[str, ...]  # /api/show's, in Ollama's order
    tools: tuple[str, ...] = ()  # the schema's place: these appear in this order (none: no tools)
    result: str = ""  # regex: a tool result in the family's tool role (`id` group: the call it answers)
    call: str = ""  # regex: the earlier call, where the format writes its id (`id` group)
    think_on: str = ""  # how the prompt ends with thinking on
    think_off: str = ""  # how it ends with `think: false` (the template's no-think branch)
    levels: bool = False  # think levels reach the template as `Reasoning: <level>`
    think_block: bool = False  # the model writes its thinking in <think>...</think> in the answer's text


FORMATS: dict[str, Format] = {
    "qwen2.5": Format(("completion", "tools", "insert"), _QWEN_TOOLS, _QWEN_RESULT),
    "qwen3": Format(("completion", "tools", "insert", "thinking"), _QWEN_TOOLS, _QWEN_RESULT,
                    think_on="<|im_start|>assistant\n", think_off="<|im_start|>assistant\n<think>\n\n</think>\n\n",
                    think_block=True),
    # Qwen3.5 writes the system text after the tool instructions, and opens the think block itself.
    "qwen3.5": Format(("completion", "tools", "insert", "thinking"),
                      ("<|im_start|>system\n", "# Tools", "<tools>", "WEATHER-DESCRIPTION", "CITY-DESCRIPTION",
                       "</tools>", "SYS-TEXT<|im_end|>\n<|im_start|>user\nUSER-TEXT<|im_end|>"), _QWEN_RESULT,
                      think_on="<|im_start|>assistant\n<think>\n",
                      think_off="<|im_start|>assistant\n<think>\n\n</think>\n\n", think_block=True),
    # Llama 3.1-3.3 put the tools in the (last) user message, results in the ipython role.
    "llama3.1": Format(("completion", "tools"), _LLAMA_TOOLS, _LLAMA_RESULT),
    "llama3.2": Format(("completion", "tools"), _LLAMA_TOOLS, _LLAMA_RESULT),
    "llama3.3": Format(("completion", "tools"), _LLAMA_TOOLS, _LLAMA_RESULT),
    # Mistral: tools before the last [INST], the system text inside it; results name their call's 9-character id.
    "mistral": Format(("completion", "tools", "insert"),
                      ("[AVAILABLE_TOOLS] [", "WEATHER-DESCRIPTION", "CITY-DESCRIPTION",
                       "[/AVAILABLE_TOOLS][INST] SYS-TEXT\n\nUSER-TEXT[/INST]"), _MISTRAL_RESULT, _MISTRAL_CALL),
    "mistral-nemo": Format(("completion", "tools", "insert"),
                           ("[AVAILABLE_TOOLS][", "WEATHER-DESCRIPTION", "CITY-DESCRIPTION",
                            "[/AVAILABLE_TOOLS][INST]SYS-TEXT\n\nUSER-TEXT[/INST]"), _MISTRAL_RESULT, _MISTRAL_CALL),
    "mistral-small3.2": Format(("completion", "tools", "insert"),
                               ("[SYSTEM_PROMPT]SYS-TEXT[/SYSTEM_PROMPT][AVAILABLE_TOOLS][", "WEATHER-DESCRIPTION",
                                "CITY-DESCRIPTION", "[/AVAILABLE_TOOLS][INST]USER-TEXT[/INST]"),
                               r"\[TOOL_RESULTS\](?P<id>\w{9})\[TOOL_CONTENT\]SUNNY-42\[/TOOL_RESULTS\]",
                               r'\[TOOL_CALLS\]get_weather\[CALL_ID\](?P<id>\w{9})\[ARGS\]\{"city": "Paris"\}'),
    "gemma2": Format(("completion",)),
    "gemma3": Format(("completion",)),
    # Gemma 4 declares tools in the system turn and answers a call by the tool's name; it thinks in a channel
    # (`<|think|>` in the system turn), and its no-think branch ends the prompt with an empty thought.
    "gemma4": Format(("completion", "tools", "thinking"),
                     ('<|turn>system\n<|think|>\nSYS-TEXT<|tool>declaration:get_weather{description:<|"|>WEATHER-DESCRIPTION',
                      "CITY-DESCRIPTION", "<tool|><turn|>\n<|turn>user\nUSER-TEXT<turn|>"),
                     r'<\|tool_response>response:get_weather\{value:<\|"\|>SUNNY-42<\|"\|>\}<tool_response\|>',
                     think_on="<|turn>system\n<|think|>\n<turn|>\n<|turn>user\nQ1<turn|>\n<|turn>model\n",
                     think_off="<|turn>model\n<|channel>thought\n<channel|>"),
    "phi3.5": Format(("completion",)),
    "phi4": Format(("completion", "insert")),
    # DeepSeek-R1's template opens the think block whatever is asked: it has no no-think branch.
    "deepseek-r1": Format(("completion", "insert", "thinking"), think_on="<｜Assistant｜><think>\n",
                          think_off="<｜Assistant｜><think>\n", think_block=True),
    # gpt-oss: tools as a TypeScript namespace in the developer message; a result comes from functions.<name>.
    "gpt-oss": Format(("completion", "tools", "thinking"),
                      ("<|start|>developer<|message|># Instructions\n\nSYS-TEXT\n\n# Tools", "namespace functions {",
                       "// WEATHER-DESCRIPTION\ntype get_weather = (_: {\n// CITY-DESCRIPTION\ncity: string,",
                       "} // namespace functions<|end|><|start|>user<|message|>USER-TEXT<|end|>"),
                      _HARMONY_RESULT,
                      think_on="<|end|><|start|>assistant", think_off="<|end|><|start|>assistant", levels=True),
    "smollm2": Format(("completion",)),
    "granite3.3": Format(("completion", "tools"),
                         ("<|start_of_role|>system<|end_of_role|>SYS-TEXT",
                          "<|start_of_role|>available_tools<|end_of_role|>",
                          "WEATHER-DESCRIPTION", "CITY-DESCRIPTION",
                          "<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>USER-TEXT<|end_of_text|>"),
                         r"<\|start_of_role\|>tool<\|end_of_role\|>SUNNY-42<\|end_of_text\|>"),
}  # fmt: skip
