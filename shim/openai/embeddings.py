"""`POST /v1/embeddings` as Ollama serves it: OpenAI's request converted to /api/embed's (same checks, same
engine call), answered as an OpenAI embedding list with floats or base64 little-endian float32.

Like Ollama, token-id inputs are refused by the native check (`invalid input type`) and no `truncate` or
`keep_alive` travels: the defaults apply.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shim.errors import Kind, ShimError
from shim.openai.binding import EMBED
from shim.openai.http import guarded, json_answer, read_body
from shim.service import Answered, ModelService, TextEmbedRequest, finished_vectors, prepare_embed
from shim.streaming import collected


class OpenAIEmbeddings:
    def __init__(self, service: ModelService) -> None:
        self.service = service

    def routes(self) -> list[Route]:
        return [Route("/v1/embeddings", guarded(self.embeddings), methods=["POST"])]

    async def embeddings(self, request: Request) -> Response:
        body = await read_body(request, EMBED, EMBED.bind)  # Go's type errors are 400s there
        encoding = body.get("encoding_format", "")
        if encoding.lower() not in ("", "float", "base64"):
            message = f"Invalid value for 'encoding_format' = {encoding}. Supported values: ['float', 'base64']."
            raise ShimError(message, Kind.BAD_INPUT)
        inputs = body.get("input")
        if inputs == "":
            inputs = [""]  # OpenAI's empty string is one empty text, where /api/embed's means none
        if inputs is None or inputs == []:
            raise ShimError("invalid input", Kind.BAD_INPUT)
        dimensions = body.get("dimensions", 0)
        native = TextEmbedRequest(model=body.get("model", ""), input=inputs, dimensions=dimensions)
        prepared = await prepare_embed(self.service, native)
        if isinstance(prepared, Answered):
            raise ShimError("invalid input", Kind.BAD_INPUT)  # unreachable: an empty input is refused above
        result = await collected(request, self.service.embed(prepared))
        data = []
        for index, vector in enumerate(finished_vectors(result, dimensions)):
            values: Any = vector if encoding.lower() != "base64" else _base64(vector)
            data.append({"object": "embedding", "embedding": values, "index": index})
        usage = {"prompt_tokens": result.prompt_eval_count, "total_tokens": result.prompt_eval_count}
        return json_answer({"object": "list", "data": data, "model": native.model, "usage": usage})


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
