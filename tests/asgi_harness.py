"""A raw ASGI client that sees each `send` one by one, for framing and disconnects.

`httpx.ASGITransport` gathers a whole body before answering, so it cannot show what a streaming answer
writes per send, or let a client leave mid-stream. Here the test reads the app's messages as they are sent
and can send `http.disconnect` whenever it likes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message


class Exchange:
    """One request to `app`, running as a task; its response messages are read with `message()`."""

    def __init__(self, app: ASGIApp, method: str, path: str, body: bytes = b"") -> None:
        self.app = app
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:11434"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 11434),
        }  # fmt: skip
        self.body = body
        self.sent: asyncio.Queue[Message] = asyncio.Queue()
        self.left = asyncio.Event()
        self.body_read = False
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Exchange:
        self.task = asyncio.create_task(self.app(self.scope, self._receive, self._send))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.disconnect()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    async def _receive(self) -> Message:
        if not self.body_read:
            self.body_read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        await self.sent.put(message)

    def disconnect(self) -> None:
        self.left.set()

    async def message(self, timeout: float = 5) -> Message:
        return await asyncio.wait_for(self.sent.get(), timeout)

    async def start(self) -> tuple[int, dict[str, str]]:
        start = await self.message()
        assert start["type"] == "http.response.start"
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}

    async def chunk(self) -> tuple[bytes, bool]:
        """The next body send: its bytes and whether more follow."""
        message = await self.message()
        assert message["type"] == "http.response.body"
        return message.get("body", b""), message.get("more_body", False)

    async def rest(self) -> bytes:
        """Every body byte to the end of the response."""
        out = b""
        more = True
        while more:
            data, more = await self.chunk()
            out += data
        return out
