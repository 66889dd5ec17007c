"""An idle timeout for request bodies: a client that stops sending mid-body is answered 408 and let go, instead
of holding a connection and a handler forever (Go's net/http, under Ollama, has no such timeout; hypercorn closes
connections idle before or between requests, but not one stalled mid-body). The wait is per read, so a multi-GB
blob upload that keeps sending is never cut, whatever its length."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shim.jsonbytes import go_json


class BodyIdleTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.seconds:
            await self.app(scope, receive, send)
            return
        body_done = False
        started = answered = False

        async def timed_receive() -> Message:
            nonlocal body_done, answered
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                body_done = True
                if not started:
                    answered = True
                    await _answer_timeout(send, self.seconds)
                return {"type": "http.disconnect"}  # the handler stops as for a client that left
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 408 went out; what the handler writes after its ClientDisconnect is dropped
            started = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)


async def _answer_timeout(send: Send, seconds: float) -> None:
    body = go_json({"error": f"request body timeout: no data for {seconds:g} s"})
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})
