"""Large request bodies are parsed off the event loop (shim/request_body.py), in-process over the fake backend:
which thread decodes each adapter's JSON and images, that the loop answers another request while a large body's
image is being decoded, and that a large body is refused as a small one is. Small bodies are parsed inline (no
thread hop). The error texts themselves are the real-server suites' (test_bad_input, test_openai, ...)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from registry.store import Store
from shim.app import create_app
from shim.config import Settings
from shim.request_body import OFF_LOOP_BYTES
from tests.asgi_harness import Exchange
from tests.fake_backend import FakeBackend

Scenario = Callable[[Any], Coroutine[Any, Any, None]]

_b64decode = base64.b64decode
_loads = json.loads


@pytest.fixture
def run(tmp_path: Path) -> Callable[[Scenario], None]:
    """Runs a scenario against a fresh app over a fake backend, with an empty store: every request here is
    answered once its body is parsed (an error, or the model's 404)."""
    return lambda scenario: asyncio.run(scenario(create_app(Settings(), Store(tmp_path), backend=FakeBackend())))


def _bodies(image: str) -> dict[str, dict[str, Any]]:
    """A request carrying `image` (base64) on each endpoint that takes images."""
    url = "data:image/png;base64," + image
    return {
        "/api/chat": {"model": "absent", "messages": [{"role": "user", "content": "hi", "images": [image]}]},
        "/api/generate": {"model": "absent", "prompt": "hi", "images": [image]},
        "/v1/chat/completions": {"model": "absent", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]},
        "/v1/responses": {"model": "absent", "input": [
            {"role": "user", "content": [{"type": "input_image", "image_url": url}]}]},
        "/v1/messages": {"model": "absent", "max_tokens": 8, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}}]}]},
    }  # fmt: skip


def _image(size: int) -> str:
    return base64.b64encode(bytes(range(256)) * (size // 256)).decode()


LARGE = _image(OFF_LOOP_BYTES)  # a body of ~4/3 the threshold
SMALL = _image(1024)


@pytest.mark.parametrize("path", list(_bodies("")))
@pytest.mark.parametrize(("image", "off_loop"), [(LARGE, True), (SMALL, False)], ids=["large", "small"])
def test_a_large_body_is_decoded_and_its_images_too_off_the_event_loop(
    run: Callable[[Scenario], None], monkeypatch: pytest.MonkeyPatch, path: str, image: str, off_loop: bool
) -> None:
    threads: dict[str, set[int]] = {"json": set(), "base64": set()}

    def loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(text, str) and image in text:
            threads["json"].add(threading.get_ident())
        return _loads(text, *args, **kwargs)

    def b64decode(data: Any, *args: Any, **kwargs: Any) -> bytes:
        if data == image:
            threads["base64"].add(threading.get_ident())
        return _b64decode(data, *args, **kwargs)

    monkeypatch.setattr(json, "loads", loads)
    monkeypatch.setattr(base64, "b64decode", b64decode)

    async def scenario(app: Any) -> None:
        loop_thread = threading.get_ident()
        async with Exchange(app, "POST", path, json.dumps(_bodies(image)[path]).encode()) as ex:
            await ex.start()
            await ex.rest()
        for step, ran_on in threads.items():
            assert len(ran_on) == 1, step  # the body's JSON and its image were each decoded
            assert (loop_thread not in ran_on) is off_loop, step

    run(scenario)


def test_the_loop_answers_another_request_while_a_large_bodys_image_is_decoded(
    run: Callable[[Scenario], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's decoding waits until a request sent after it has been answered: on the event loop it would
    hold the loop, and the other request would be answered only once the wait gave up."""
    decoding, answered = threading.Event(), threading.Event()
    order: list[str] = []

    def b64decode(data: Any, *args: Any, **kwargs: Any) -> bytes:
        if data == LARGE:
            decoding.set()
            answered.wait(10)
            order.append("image decoded")
        return _b64decode(data, *args, **kwargs)

    monkeypatch.setattr(base64, "b64decode", b64decode)

    async def scenario(app: Any) -> None:
        async with Exchange(app, "POST", "/api/chat", json.dumps(_bodies(LARGE)["/api/chat"]).encode()) as large:
            await asyncio.to_thread(decoding.wait, 10)
            async with Exchange(app, "GET", "/api/version") as other:
                assert (await other.start())[0] == 200
                await other.rest()
            order.append("other answered")
            answered.set()
            await large.start()
            await large.rest()
        assert order == ["other answered", "image decoded"]

    run(scenario)


async def _answer(app: Any, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    async with Exchange(app, "POST", path, body) as ex:
        status, _ = await ex.start()
        answer = json.loads(await ex.rest())
    answer.pop("request_id", None)  # Anthropic's errors carry a fresh one
    return status, answer


@pytest.mark.parametrize("path", list(_bodies("")))
def test_a_large_body_is_refused_as_a_small_one_is(run: Callable[[Scenario], None], path: str) -> None:
    """The errors raised on the worker thread reach the client as they do from the loop: a bad image (at the same
    byte) and a body cut short answer the same status and text at both sizes."""

    async def scenario(app: Any) -> None:
        refused = await _answer(app, path, json.dumps(_bodies("AAAA!")[path]).encode())
        assert refused[0] == 400 and "input" in json.dumps(refused[1])  # "... base64 ... input byte 4", "image input"
        for bad in ("AAAA!" + LARGE, "AAAA!" + SMALL):
            assert await _answer(app, path, json.dumps(_bodies(bad)[path]).encode()) == refused
        cut = json.dumps(_bodies(LARGE)[path]).encode()
        status, answer = await _answer(app, path, cut[: len(cut) // 2])
        assert status == 400 and "unexpected EOF" in json.dumps(answer)
        assert (status, answer) == await _answer(app, path, cut[:200])

    run(scenario)
