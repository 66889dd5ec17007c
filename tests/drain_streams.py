"""Streams of every protocol kept running while the server is stopped, and what each must end with: the graceful
drain's in-stream error ("server is shutting down") for those running, a 503 error body for one still queued.
Shared by tests/test_clean_exit.py and scripts/drain_stops.py."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import httpx

SHUTTING_DOWN = "server is shutting down"
# An answer the tiny model cannot end early: at least 2,000 integers (some 4,000 tokens, about 10 s on a CPU).
LONG_FORMAT = {"type": "array", "items": {"type": "integer"}, "minItems": 2000}
_HI = [{"role": "user", "content": "hi"}]
_JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "numbers", "schema": LONG_FORMAT}}
STREAMS: list[tuple[str, dict[str, object]]] = [  # OLLAMA_NUM_PARALLEL (4) of them run at once
    ("/api/generate", {"model": "tiny", "prompt": "hi", "format": LONG_FORMAT, "options": {"num_predict": 100000}}),
    ("/api/chat", {"model": "tiny", "messages": _HI, "format": LONG_FORMAT, "options": {"num_predict": 100000}}),
    ("/v1/chat/completions", {"model": "tiny", "messages": _HI, "stream": True, "response_format": _JSON_SCHEMA}),
    # Anthropic's API has no `format`: this one may finish before the stop (then it must end with message_stop)
    ("/v1/messages", {"model": "tiny", "messages": _HI, "stream": True, "max_tokens": 100000}),
]
# Not streamed, queued behind the streams (or running if a slot frees): nothing written yet, so a 503 error body
QUEUED = ("/api/generate", {"model": "tiny", "prompt": "hi", "stream": False, "format": LONG_FORMAT})


@dataclass
class Answer:
    path: str
    status: int = 0
    lines: list[str] = field(default_factory=list)
    failure: str = ""


class InFlight:
    """The streams, started; `wait_started` returns once each has its first chunk."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.answers = [Answer(path) for path, _ in STREAMS]
        self.queued = Answer(QUEUED[0])
        self._started = threading.Semaphore(0)
        self._threads = [
            threading.Thread(target=self._read, args=(path, body, answer, True))
            for (path, body), answer in zip(STREAMS, self.answers, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def wait_started(self, timeout: float = 60) -> bool:
        if not all(self._started.acquire(timeout=timeout) for _ in self._threads):
            return False
        queued = threading.Thread(target=self._read, args=(*QUEUED, self.queued, False))
        self._threads.append(queued)
        queued.start()
        return True

    def join(self, timeout: float = 60) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _read(self, path: str, body: dict[str, object], answer: Answer, signal_start: bool) -> None:
        try:
            with httpx.stream("POST", self._url + path, json=body, timeout=60) as response:
                answer.status = response.status_code
                for line in response.iter_lines():
                    if line.strip():
                        if signal_start and not answer.lines:
                            self._started.release()
                        answer.lines.append(line)
        except httpx.HTTPError as e:
            answer.failure = f"{type(e).__name__}: {e}"
        if signal_start and not answer.lines:
            self._started.release()

    def problems(self) -> list[str]:
        """What did not end as the drain promises ([] when every answer did)."""
        found = [f"{a.path}: {why}" for a in self.answers if (why := _stream_problem(a))]
        queued = self.queued
        if queued.failure or queued.status not in (0, 503) or (queued.status and SHUTTING_DOWN not in queued.lines[-1]):
            found.append(f"queued {queued.path}: {queued.status} {queued.failure} {queued.lines[-1:]}")
        return found


def _stream_problem(answer: Answer) -> str:
    if answer.failure:
        return answer.failure  # the stream was cut without its final line
    if answer.status != 200 or not answer.lines:
        return f"status {answer.status}, {len(answer.lines)} lines"
    last = answer.lines[-1]
    if answer.path in ("/api/generate", "/api/chat"):
        ok = json.loads(last) == {"error": SHUTTING_DOWN}
    elif answer.path == "/v1/chat/completions":
        ok = last.startswith("data: {") and json.loads(last[6:])["error"]["message"] == SHUTTING_DOWN
    elif answer.lines[-2:] == ["event: message_stop", 'data: {"type":"message_stop"}']:
        ok = True  # finished before the stop
    else:  # Anthropic: an error event
        ok = answer.lines[-2] == "event: error" and json.loads(last[6:])["error"]["message"] == SHUTTING_DOWN
    return "" if ok else f"ended with {last[:200]!r}"
