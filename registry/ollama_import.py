"""Importing models from an Ollama library into our store, under the same names: one engine for
`mlx-shim import` and `POST /api/import`.

Each model's GGUF is converted into the owned directory its digest names (registry/gguf_models.py), so a
GGUF imported twice, or also created from, is converted once; its TEMPLATE, SYSTEM, PARAMETERs, LICENSEs and
MESSAGEs are carried into our manifest. The GGUF is read where it is, never copied nor linked: Ollama's store
is only read. A name we already have is replaced as a pull replaces it (what only it held is released). A
model that cannot be imported is reported and skipped; the others go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.create import CreateError, check_loadable, check_parameters
from registry.gguf_models import GGUFSource, convert_to_owned, is_gguf_file
from registry.names import InvalidName, ModelName
from registry.ollama_library import ImportPlan, LibraryModel, OllamaLibrary, Skip
from registry.release import release_replaced
from registry.store import Store
from shim.errors import Kind, ShimError

Emit = Callable[[dict[str, Any]], None]


class ImportRequestError(ShimError, ValueError):
    """A request that imports nothing: a bad name, or one the library does not have (400/404)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, Kind(status))


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"status": "success", "imported": self.imported, "skipped": self.skipped}


def select(library: OllamaLibrary, names: list[str]) -> list[LibraryModel]:
    """The models to import, checked before anything is done: all of them when no name is given."""
    if not names:
        return library.models()
    chosen = []
    for requested in names:
        try:
            name = ModelName.parse(requested)
        except InvalidName:
            raise ImportRequestError("invalid model name", 400) from None
        found = library.find(name)
        if found is None:
            raise ImportRequestError(f"model '{requested}' not found in the Ollama library at {library.root}", 404)
        if found not in chosen:
            chosen.append(found)
    return chosen


def import_models(
    store: Store, library: OllamaLibrary, models: list[LibraryModel], emit: Emit, cancelled: threading.Event
) -> ImportReport:
    """Import each model in turn, emitting Ollama-style `{"status": ...}` progress; stops between models
    when `cancelled` is set (the client went away)."""
    report = ImportReport()
    for model in models:
        if cancelled.is_set():
            break
        display = model.name.display
        emit({"status": f"importing {display}"})
        try:
            import_one(store, library, model, emit)
        except Skip as e:
            emit({"status": f"skipping {display}: {e.reason}"})
            report.skipped.append({"model": display, "reason": e.reason})
            continue
        emit({"status": f"imported {display}"})
        report.imported.append(display)
    return report


def import_one(store: Store, library: OllamaLibrary, model: LibraryModel, emit: Emit) -> None:
    """Raises Skip for a model that cannot be imported, with the reason."""
    plan = library.plan(model)
    if not is_gguf_file(plan.gguf):
        raise Skip("its model layer is not a GGUF file")
    manifest = carried_settings(plan)
    for note in plan.notes:
        emit({"status": f"note: {note}"})
    source = GGUFSource(plan.gguf, plan.digest, model.name.display)

    def convert() -> Path:
        emit({"status": "parsing GGUF"})
        try:
            directory, _ = convert_to_owned(
                store.home / "models", source, None, lambda s: emit({"status": s}), check_loadable
            )
        except ShimError as e:  # a GGUFError, or a CreateError: converted, but not a model mlx-lm can load
            raise Skip(e.message) from None
        emit({"status": f"using existing layer {plan.digest}"})
        return directory

    directory = convert()
    with store.changing:
        if not directory.is_dir():  # a delete released it meanwhile: convert it again
            directory = convert()
        emit({"status": "writing manifest"})
        previous = store.get(model.name)
        store.put(model.name, {"source": {"type": "local", "path": str(directory), "owned": True}, **manifest})
        if previous is not None:
            release_replaced(store, previous)


def carried_settings(plan: ImportPlan) -> dict[str, Any]:
    """Our manifest's settings from the plan: what our engine cannot use is left out, with a note."""
    out: dict[str, Any] = {"imported_from": {"ollama": True, "model": plan.digest}}
    if plan.template is not None:
        from shim.gotemplate import Template, TemplateError

        try:
            Template.parse(plan.template)
            out["template"] = plan.template
        except TemplateError as e:
            plan.notes.append(f"its TEMPLATE is left out ({e}): the chat template inside the GGUF is used")
    if plan.system is not None:
        out["system"] = plan.system
    parameters: dict[str, Any] = {}
    for name, value in plan.parameters.items():
        try:
            parameters.update(check_parameters({name: value}))
        except CreateError as e:
            plan.notes.append(f"parameter {name} is left out: {e.message}")
    if parameters:
        out["parameters"] = parameters
    if plan.license:
        out["license"] = plan.license
    if plan.messages:
        out["messages"] = plan.messages
    out.update(plan.renderer)
    return out
