"""The protocol-neutral request path every adapter (Ollama, OpenAI, Anthropic) goes through."""

from shim.service.backend import ModelBackend
from shim.service.embed import finished_vectors, prepare_embed, prepare_embedding
from shim.service.models import Answered, Event, ModelService, Prepared
from shim.service.requests import (
    ChatRequest,
    CopyRequest,
    DeleteRequest,
    EmbeddingRequest,
    GenerateRequest,
    ImportRequest,
    ShowRequest,
    TextEmbedRequest,
    TransferRequest,
)

__all__ = [
    "Answered",
    "ChatRequest",
    "CopyRequest",
    "DeleteRequest",
    "EmbeddingRequest",
    "Event",
    "GenerateRequest",
    "ImportRequest",
    "ModelBackend",
    "ModelService",
    "Prepared",
    "ShowRequest",
    "TextEmbedRequest",
    "TransferRequest",
    "finished_vectors",
    "prepare_embed",
    "prepare_embedding",
]
