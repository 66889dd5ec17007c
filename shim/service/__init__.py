"""The protocol-neutral request path every adapter (Ollama, OpenAI, Anthropic) goes through."""

from shim.service.backend import ModelBackend
from shim.service.embed import embeddable, finished_vectors, parse_name, prepare_embed
from shim.service.models import Answered, Event, ModelService, Prepared
from shim.service.requests import ChatRequest, CopyRequest, DeleteRequest, GenerateRequest, ShowRequest, TransferRequest

__all__ = [
    "Answered",
    "ChatRequest",
    "CopyRequest",
    "DeleteRequest",
    "Event",
    "GenerateRequest",
    "ModelBackend",
    "ModelService",
    "Prepared",
    "ShowRequest",
    "TransferRequest",
    "embeddable",
    "finished_vectors",
    "parse_name",
    "prepare_embed",
]
