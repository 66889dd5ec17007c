"""The request structs of Ollama's openai middleware, bound with Go's semantics and error texts (`shim.gobind`)
before conversion to the native requests."""

from __future__ import annotations

from shim.gobind import ANY, BOOL, FLOAT32, FLOAT64, INT, RAW, STRING, Struct, list_of, nested

# The /v1 request structs of Ollama's openai package, checked before conversion as its middleware binds
# them (tools, tool calls and schemas are checked for their outer JSON type only; their contents are the
# tools and structured-output code's to judge).
_STREAM_OPTIONS = nested(Struct("StreamOptions", {"include_usage": BOOL}, "openai"), "openai.StreamOptions")
_JSON_SCHEMA = nested(Struct("JsonSchema", {"schema": RAW}, "openai"), "openai.JsonSchema")
_RESPONSE_FORMAT = Struct("ResponseFormat", {"type": STRING, "json_schema": _JSON_SCHEMA}, "openai")
_OPENAI_FUNCTION_CALL = Struct("", {"name": STRING, "arguments": STRING}, "openai")  # an anonymous struct in Go
_OPENAI_TOOL_CALL = Struct(
    "ToolCall",
    {
        "id": STRING,
        "index": INT,
        "type": STRING,
        "function": nested(
            _OPENAI_FUNCTION_CALL, 'struct { Name string "json:\\"name\\""; Arguments string "json:\\"arguments\\"" }'
        ),
    },
    "openai",
)
_OPENAI_MESSAGE = Struct(
    "Message",
    {
        "role": STRING,
        "content": ANY,
        "reasoning": STRING,
        "tool_calls": list_of(nested(_OPENAI_TOOL_CALL, "openai.ToolCall"), "[]openai.ToolCall"),
        "name": STRING,
        "tool_call_id": STRING,
    },
    "openai",
)

CHAT_COMPLETION = Struct(
    "ChatCompletionRequest",
    {
        "model": STRING,
        "messages": list_of(nested(_OPENAI_MESSAGE, "openai.Message"), "[]openai.Message"),
        "stream": BOOL,
        "stream_options": _STREAM_OPTIONS,
        "max_tokens": INT,
        "seed": INT,
        "stop": ANY,
        "temperature": FLOAT64,
        "frequency_penalty": FLOAT64,
        "presence_penalty": FLOAT64,
        "top_p": FLOAT64,
        "response_format": nested(_RESPONSE_FORMAT, "openai.ResponseFormat"),
        "tools": list_of(nested(Struct("Tool", {}), "api.Tool"), "[]api.Tool"),
        "reasoning": nested(Struct("Reasoning", {"effort": STRING}, "openai"), "openai.Reasoning"),
        "reasoning_effort": STRING,
        "logprobs": BOOL,
        "top_logprobs": INT,
        "_debug_render_only": BOOL,
    },
    "openai",
)

COMPLETION = Struct(
    "CompletionRequest",
    {
        "model": STRING,
        "prompt": STRING,
        "frequency_penalty": FLOAT32,
        "max_tokens": INT,
        "presence_penalty": FLOAT32,
        "seed": INT,
        "stop": ANY,
        "stream": BOOL,
        "stream_options": _STREAM_OPTIONS,
        "temperature": FLOAT32,
        "top_p": FLOAT32,
        "suffix": STRING,
        "logprobs": INT,
        "_debug_render_only": BOOL,
    },
    "openai",
)

# openai.EmbedRequest: `input` stays any JSON value, the others get Go's type checks and error texts.
EMBED = Struct("EmbedRequest", {"input": RAW, "model": STRING, "encoding_format": STRING, "dimensions": INT}, "openai")
