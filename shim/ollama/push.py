"""POST /api/push, answered the way Ollama's PushHandler answers a push that cannot happen.

mlx-shim's models are MLX weights from Hugging Face, not the GGUF layers an Ollama registry stores, so
there is nothing it could upload. The request is still checked as Ollama checks it, and the stream still
starts with `retrieving manifest`, so the `ollama push` CLI and client libraries show the reason as they
show any failed push (a streamed error line, or a 500 with `stream:false`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response

from registry.names import InvalidName, ModelName
from registry.store import Store
from shim.jsonbytes import go_json
from shim.responses import ndjson_response

CANNOT_PUSH = "mlx-shim cannot push models: they are MLX weights from Hugging Face, not an Ollama registry's layers"


def push_response(store: Store, requested: str, stream: bool) -> Response:
    objects: list[dict[str, Any]] = [{"status": "retrieving manifest"}]
    try:
        found = store.get(ModelName.parse(requested)) is not None
    except InvalidName:
        found = False
    if found:
        objects.append({"error": CANNOT_PUSH})
    else:
        missing = f"model {json.dumps(requested, ensure_ascii=False)} not found"
        objects += [{"status": "couldn't retrieve manifest"}, {"error": missing}]
    if not stream:  # Ollama's waitForStream: the error alone, as a 500 without charset
        return Response(go_json(objects[-1]), status_code=500, media_type="application/json")

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        yield objects

    return ndjson_response(batches())
