"""`HEAD|POST /api/blobs/:digest` and `POST /api/create`, checked in the order of Ollama's handlers.

Errors found before any progress is reported answer with their own status, as gin's AbortWithStatusJSON
does; once the create has reported progress, an error is one more NDJSON line (streamResponse), or, with
`stream: false`, the status it carries (waitForStream, whose bodies have no charset). A create can convert a
GGUF or quantize (minutes for a large model), so it runs on a worker thread and its progress streams live.

`quantize` is checked before anything starts: an unknown name answers 400 with Ollama's text (Ollama sends the
same text later, as a stream error).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.blobs import Blobs, DigestMismatch, InvalidDigest
from registry.create import CreateError, CreateSpec, check_field_sizes, check_files, check_parameters, create_model
from registry.names import InvalidName, ModelName
from registry.quantize import Quantization
from registry.store import Store
from shim.errors import Kind, ShimError
from shim.ollama.binding import CREATE
from shim.ollama.http import guarded, read_body
from shim.ollama.worker_stream import Emit, respond, start_worker


class CreateAPI:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.blobs = Blobs(store.home)

    def routes(self) -> list[Route]:
        return [
            Route("/api/blobs/{digest}", guarded(self.blob), methods=["HEAD", "POST"]),
            Route("/api/create", guarded(self.create), methods=["POST"]),
        ]

    async def blob(self, request: Request) -> Response:
        digest = request.path_params["digest"]
        try:
            exists = self.blobs.exists(digest)
        except InvalidDigest as e:
            raise ShimError(str(e), Kind.BAD_INPUT) from None
        if request.method == "HEAD":
            if not exists:
                raise ShimError(f'blob "{digest}" not found', Kind.NOT_FOUND)
            return Response(status_code=200)
        if exists:
            async for _ in request.stream():  # read what was sent, so the connection stays usable
                pass
            return Response(status_code=200)
        chunks = request.stream()
        try:
            created = await self.blobs.write(digest, chunks)
        except DigestMismatch as e:
            raise ShimError(str(e), Kind.BAD_INPUT) from None
        except OSError as e:  # a full disk: read the rest, so the client finishes sending and sees why
            async for _ in chunks:
                pass
            raise ShimError(f"write blob {digest}: {(e.strerror or str(e)).lower()}", Kind.INTERNAL) from None
        return Response(status_code=201 if created else 200)

    async def create(self, request: Request) -> Response:
        req = await read_body(request, CREATE)
        spec = self._spec(req)
        queue, cancelled = start_worker(lambda emit, _: _run(self.store, spec, emit), f"create {spec.name.display}")
        return await respond(request, queue, cancelled, req.get("stream", True) is not False)

    def _spec(self, req: dict[str, Any]) -> CreateSpec:
        """CreateHandler's checks before it starts streaming, in its order."""
        files = req.get("files") or {}
        check_files(files)
        check_field_sizes(req)
        if req.get("adapters"):
            raise CreateError("LoRA adapters are not supported by mlx-shim")
        license = _license(req.get("license"))
        try:
            name = ModelName.parse(req.get("model") or req.get("name") or "")
        except InvalidName:
            raise ShimError("invalid model name", Kind.BAD_INPUT) from None
        for path, digest in files.items():
            if not self.blobs.exists(digest):
                raise ShimError(f"blob not found for {path} (digest {digest})", Kind.BAD_INPUT)
        quantize = req.get("quantize") or req.get("quantization") or None
        if quantize:
            Quantization.parse(quantize)
        parameters = check_parameters(req["parameters"]) if "parameters" in req else None
        return CreateSpec(
            name=name,
            from_=req.get("from", ""),
            files=files,
            template=req.get("template"),
            system=req.get("system"),
            license=license,
            parameters=parameters,
            messages=req.get("messages"),
            quantize=quantize,
            renderer=req.get("renderer") or None,
            parser=req.get("parser") or None,
            requires=req.get("requires") or None,
        )


def _run(store: Store, spec: CreateSpec, emit: Emit) -> None:
    """On a worker thread: each status as it happens, then success or the error with its status."""
    try:
        for status in create_model(store, spec):
            emit({"status": status})
    except ShimError as e:  # CreateError, QuantizeError, GGUFFilesError: each with its kind
        emit(e)
        return
    except OSError as e:
        emit(ShimError(str(e)))
        return
    emit({"status": "success"})


def _license(value: Any) -> list[str] | None:
    """Ollama's LicenseStrings: a string or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise CreateError("license must be a string or a list of strings")
