"""`HEAD|POST /api/blobs/:digest` and `POST /api/create`, checked in the order of Ollama's handlers.

Errors found before any progress is reported answer with their own status, as gin's AbortWithStatusJSON
does; once the create has reported progress, an error is one more NDJSON line (streamResponse), or, with
`stream: false`, the status it carries (waitForStream, whose bodies have no charset).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.blobs import Blobs, DigestMismatch, InvalidDigest
from registry.create import CreateError, CreateSpec, check_files, check_parameters, create_model
from registry.names import InvalidName, ModelName
from registry.store import Store
from shim.jsonbytes import go_json
from shim.ollama.binding import CREATE
from shim.ollama.routes import ApiError, OllamaAPI, read_body
from shim.responses import ndjson_response

_STREAM_JSON = "application/json"  # waitForStream and streamResponse's own error answers


class CreateAPI:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.blobs = Blobs(store.home)

    def routes(self) -> list[Route]:
        return [
            Route("/api/blobs/{digest}", OllamaAPI.guarded(self.blob), methods=["HEAD", "POST"]),
            Route("/api/create", OllamaAPI.guarded(self.create), methods=["POST"]),
        ]

    async def blob(self, request: Request) -> Response:
        digest = request.path_params["digest"]
        try:
            exists = self.blobs.exists(digest)
        except InvalidDigest as e:
            raise ApiError(str(e), 400) from None
        if request.method == "HEAD":
            if not exists:
                raise ApiError(f'blob "{digest}" not found', 404)
            return Response(status_code=200)
        if exists:
            async for _ in request.stream():  # read what was sent, so the connection stays usable
                pass
            return Response(status_code=200)
        try:
            created = await self.blobs.write(digest, request.stream())
        except DigestMismatch as e:
            raise ApiError(str(e), 400) from None
        return Response(status_code=201 if created else 200)

    async def create(self, request: Request) -> Response:
        req = await read_body(request, CREATE)
        spec = self._spec(req)
        statuses, error = await asyncio.to_thread(_run, self.store, spec)
        if req.get("stream", True) is False:
            if error is not None:
                return _stream_json({"error": error.message}, error.status)
            return _stream_json({"status": "success"}, 200)
        if error is not None and not statuses:
            return _stream_json({"error": error.message}, error.status)
        lines: list[dict[str, Any]] = [{"status": s} for s in statuses]
        lines.append({"error": error.message} if error is not None else {"status": "success"})

        async def body() -> Any:
            yield lines

        return ndjson_response(body())

    def _spec(self, req: dict[str, Any]) -> CreateSpec:
        """CreateHandler's checks before it starts streaming, in its order."""
        files = req.get("files") or {}
        try:
            check_files(files)
            if req.get("adapters"):
                raise CreateError("LoRA adapters are not supported by mlx-shim")
            license = _license(req.get("license"))
        except CreateError as e:
            raise ApiError(e.message, e.status) from None
        try:
            name = ModelName.parse(req.get("model") or req.get("name") or "")
        except InvalidName:
            raise ApiError("invalid model name", 400) from None
        for path, digest in files.items():
            if not self.blobs.exists(digest):
                raise ApiError(f"blob not found for {path} (digest {digest})", 400)
        quantize = req.get("quantize") or req.get("quantization")
        if quantize:
            raise ApiError(_quantize_error(quantize, bool(files)), 400)
        try:
            parameters = check_parameters(req["parameters"]) if "parameters" in req else None
        except CreateError as e:
            raise ApiError(e.message, e.status) from None
        return CreateSpec(
            name=name,
            from_=req.get("from", ""),
            files=files,
            template=req.get("template"),
            system=req.get("system"),
            license=license,
            parameters=parameters,
            messages=req.get("messages"),
        )


def _run(store: Store, spec: CreateSpec) -> tuple[list[str], CreateError | None]:
    """Creating links files and reads headers (blocking work), so it runs on a worker thread; it takes
    milliseconds, so its progress is sent when it ends."""
    statuses: list[str] = []
    try:
        for status in create_model(store, spec):
            statuses.append(status)
    except CreateError as e:
        return statuses, e
    except OSError as e:
        return statuses, CreateError(str(e), 500)
    return statuses, None


def _license(value: Any) -> list[str] | None:
    """Ollama's LicenseStrings: a string or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise CreateError("license must be a string or a list of strings")


def _quantize_error(quantize: str, files: bool) -> str:
    if not files:
        return (
            "create-time quantization is only supported for safetensors imports; "
            "quantize GGUF models with llama.cpp tools before importing"
        )
    return (
        f'unsupported quantize type "{quantize}": mlx-shim does not quantize at create time; '
        "import weights already quantized for MLX (mlx_lm.convert -q)"
    )


def _stream_json(obj: dict[str, Any], status: int) -> Response:
    return Response(go_json(obj), status_code=status, media_type=_STREAM_JSON)
