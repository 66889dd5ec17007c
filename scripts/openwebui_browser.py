"""The browser half of `scripts/e2e_openwebui.py`: drives a running Open WebUI in headless Chromium through
Playwright, one timed step at a time, a screenshot per step. Run by that script with Open WebUI's own venv
(where `playwright` is installed), not imported by mlx-shim:

    VENV/bin/python scripts/openwebui_browser.py --webui URL --out DIR --chromium /usr/bin/chromium \
        --chat-model smollm2:135m --tool-model tiny:latest --vision-model tiny-vision:latest

Open WebUI's state is read back through its own API with the page's session token (the chat as saved, its
tool calls and sources); what is configured through that API (four model presets) is setup, not under test.
Prints `PASS`/`FAIL` per step; exits 1 when any step failed.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image  # Open WebUI's venv has Pillow (one of Open WebUI's own dependencies)
from playwright.sync_api import Page, sync_playwright

# Open WebUI 0.12.x's built-in tool categories (a model's meta.builtinTools). The tool presets keep only web
# search: the tiny model was trained to call `search_web`, one of Open WebUI's built-in tools, and 20-odd
# tool schemas would not fit its context.
BUILTIN_CATEGORIES = ("time", "user_input", "files", "knowledge", "chats", "subagents", "memory", "web_search",
                      "image_generation", "code_interpreter", "notes", "channels", "skills", "tasks",
                      "automations", "calendar", "notifications")  # fmt: skip
ANSWER_TIMEOUT_S = 240.0
# The tiny model calls search_web for this phrasing with Open WebUI's two web tools offered (greedy, the
# seed-0 build); for most others, with the longer schemas than it was trained on, it answers without a call.
SEARCH_PROMPT = "Do a web search on python."
IMAGE_COLOUR = ("green", (30, 180, 40))  # one the tiny vision model was trained on (scripts/tiny_model/vision.py)


class StepFailed(Exception):
    pass


class Run:
    """The steps' shared state and their report lines."""

    def __init__(self, page: Page, webui: str, out: Path) -> None:
        self.page, self.webui, self.out = page, webui.rstrip("/"), out
        self.results: list[tuple[str, bool, float]] = []
        self.chat_id = ""

    def step(self, name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail, ok = action(), True
        except Exception as e:  # a step's failure is reported, the next independent step still runs
            detail, ok = f"{type(e).__name__}: {e}", False
        took = time.monotonic() - started
        shot = self.out / f"{len(self.results) + 1:02d}-{name}.png"
        try:
            self.page.screenshot(path=str(shot))
        except Exception as e:
            detail += f" (no screenshot: {e})"
        self.results.append((name, ok, took))
        print(f"{'PASS' if ok else 'FAIL'}  {name:<16} {took:6.1f} s  {detail}  [{shot.name}]", flush=True)
        return ok

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        token = self.page.evaluate("() => localStorage.token")
        response = self.page.request.fetch(
            self.webui + path, method=method, data=body, headers={"Authorization": f"Bearer {token}"}
        )
        if not response.ok:
            raise StepFailed(f"{method} {path}: {response.status} {response.text()[:300]}")
        return response.json()

    # --- the page -------------------------------------------------------------------------------------------

    def open_home(self) -> None:
        self.page.goto(self.webui + "/")
        self.page.locator("#chat-input").wait_for(timeout=60_000)
        self.page.wait_for_timeout(1500)  # the release-notes dialog opens after the page settles
        notes = self.page.get_by_text("Okay, Let's Go!")
        if notes.is_visible():
            notes.click()

    def pick_model(self, model_id: str, name: str) -> list[str]:
        self.page.locator("#model-selector-model-button").click()
        options = self.page.get_by_role("option")
        options.first.wait_for(timeout=10_000)
        listed = [str(o.get_attribute("aria-label")) for o in options.all()]
        target = self.page.get_by_role("option", name=f"Select {name} model", exact=True)
        if target.count() == 0:
            raise StepFailed(f"{name} is not in the picker: {listed}")
        target.click()
        label = self.page.locator("#model-selector-model-button").get_attribute("aria-label") or ""
        if name not in label:
            raise StepFailed(f"picked {model_id}, the selector says {label!r}")
        return listed

    def send(self, text: str) -> None:
        self.page.locator("#chat-input").click()
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")

    def wait_answer(self, turn: int) -> tuple[dict[str, Any], int]:
        """Waits until the chat's `turn`-th assistant message is saved as done; meanwhile samples the text the
        page shows for it and counts the partial answers among those samples (the answer's first word shown,
        not yet all of it), so a reply that arrived in one piece (not streamed) can be told apart."""
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while "/c/" not in self.page.url and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        self.chat_id = self.page.url.rsplit("/c/", 1)[-1]
        seen: set[str] = set()
        while time.monotonic() < deadline:
            shown = self.page.locator("#chat-container .chat-assistant")
            if shown.count() >= turn:
                seen.add(shown.nth(turn - 1).inner_text())
            answers = self.assistant_messages()
            if len(answers) >= turn and answers[turn - 1].get("done"):
                self.page.wait_for_timeout(300)
                final = str(answers[turn - 1].get("content") or "").strip()
                first = final.split(maxsplit=1)[0] if final else "\0"
                return answers[turn - 1], sum(first in text and final not in text for text in seen)
            self.page.wait_for_timeout(150)
        raise StepFailed(f"no finished answer {turn} within {ANSWER_TIMEOUT_S:.0f} s")

    def assistant_messages(self) -> list[dict[str, Any]]:
        chat = self.api("GET", f"/api/v1/chats/{self.chat_id}")["chat"]
        history = chat.get("history") or {}
        messages = history.get("messages") or {}
        chain, current = [], history.get("currentId")
        while current and current in messages:  # the path the page shows, oldest first
            chain.append(messages[current])
            current = messages[current].get("parentId")
        return [m for m in reversed(chain) if m.get("role") == "assistant"]


def _check_answer(message: dict[str, Any]) -> str:
    if message.get("error"):
        raise StepFailed(f"Open WebUI shows an error: {message['error']}")
    content = str(message.get("content") or "").strip()
    if not content:
        raise StepFailed(f"empty answer: {json.dumps(message)[:400]}")
    return content


def _native_search(message: dict[str, Any]) -> str:
    """The model's call and Open WebUI's run of it, as the answer's saved output items record them."""
    items = message.get("output") or []
    calls = [i for i in items if i.get("type") == "function_call" and i.get("name") == "search_web"]
    results = [i for i in items if i.get("type") == "function_call_output"]
    if not calls or "python.org" not in json.dumps(results):
        raise StepFailed(f"no search_web call with its result in the saved answer: {json.dumps(items)[:400]}")
    return f"the model called search_web({calls[0].get('arguments')}), its result went back to the model"


def _legacy_search(message: dict[str, Any]) -> str:
    """Open WebUI's own search: the queries it asked the model for, and the result it put into the prompt."""
    queries = [q for s in message.get("statusHistory") or [] for q in s.get("queries") or []]
    if "python.org" not in json.dumps(message.get("sources") or []):
        raise StepFailed(f"the search result is not among the answer's sources: {json.dumps(message)[:400]}")
    return f"Open WebUI searched (model's queries {queries!r}), the result is the answer's source"


def _solid_png(rgb: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), rgb).save(out, "PNG")
    return out.getvalue()


def _presets(chat_model: str, tool_model: str, vision_model: str) -> list[dict[str, Any]]:
    """Open WebUI model entries, all greedy (temperature 0: a 135M model's answers wander at Ollama's 0.8). The
    chat model keeps Open WebUI's defaults: its native mode sends the built-in tools with every chat, which the
    embedded smollm2:135m takes, as Ollama's smollm2:135m does (its template renders tools). The two tool
    presets wrap the tool model with web search as their one built-in tool category, one preset per
    function-calling mode. The vision model is marked as taking images (Open WebUI assumes so anyway), without
    built-in tools: Gemma 3's chat template has none."""
    only_search = {category: category == "web_search" for category in BUILTIN_CATEGORIES}
    tool_meta = {"capabilities": {"builtin_tools": True, "web_search": True}, "builtinTools": only_search,
                 "defaultFeatureIds": ["web_search"]}  # fmt: skip
    return [
        {"id": chat_model, "base_model_id": None, "name": chat_model, "meta": {}, "params": {"temperature": 0}},
        {"id": vision_model, "base_model_id": None, "name": vision_model,
         "meta": {"capabilities": {"builtin_tools": False, "vision": True}}, "params": {"temperature": 0}},
        *({"id": f"e2e-{mode}", "base_model_id": tool_model, "name": f"{tool_model} {mode}", "meta": tool_meta,
           "params": {"function_calling": mode, "temperature": 0}} for mode in ("native", "legacy")),
    ]  # fmt: skip


def run_steps(run: Run, chat_model: str, tool_model: str, vision_model: str) -> None:
    page = run.page

    def open_page() -> str:
        run.open_home()
        for preset in _presets(chat_model, tool_model, vision_model):
            run.api("POST", "/api/v1/models/create", preset)
        run.open_home()  # the picker lists the presets
        return f"Open WebUI {run.api('GET', '/api/config')['version']} up, 4 model presets saved"

    def model_picker() -> str:
        listed = run.pick_model(chat_model, chat_model)
        return f"{len(listed)} models listed, {chat_model} selected"

    def streamed_chat() -> str:
        run.send("What is the capital of France?")
        message, pieces = run.wait_answer(1)
        content = _check_answer(message)
        if pieces < 1:
            raise StepFailed(f"{pieces} partial answer(s) shown before the whole, not streamed: {content!r}")
        return f"{pieces} partial answers shown before the whole, answer {content[:80]!r}"

    def saved_chat() -> str:
        page.reload()
        page.locator("#chat-input").wait_for(timeout=60_000)
        page.get_by_text("What is the capital of France?").first.wait_for(timeout=20_000)
        answer = _check_answer(run.assistant_messages()[0]).splitlines()[0]
        page.locator("#chat-container .chat-assistant").get_by_text(answer).first.wait_for(timeout=20_000)
        return f"/c/{run.chat_id} reloaded with its question and answer"

    def second_turn() -> str:
        run.send("And the capital of Germany?")
        message, _ = run.wait_answer(2)
        return f"answer {_check_answer(message)[:80]!r}"

    def tools(mode: str) -> Callable[[], str]:
        def step() -> str:
            run.open_home()
            run.pick_model(f"e2e-{mode}", f"{tool_model} {mode}")
            run.send(SEARCH_PROMPT)
            message, _ = run.wait_answer(1)
            content = _check_answer(message)
            (run.out / f"chat-{mode}.json").write_text(json.dumps(message, indent=1))
            used = _native_search(message) if mode == "native" else _legacy_search(message)
            return f"{used}; answer {content[:60]!r}"

        return step

    def image_upload() -> str:
        """The image is picked as a user does (the input menu's "Upload Files", then the file dialog), Open
        WebUI uploads it, then sends it with the question; the answer must name its colour."""
        name, rgb = IMAGE_COLOUR
        run.open_home()
        run.pick_model(vision_model, vision_model)
        upload = {"name": f"{name}.png", "mimeType": "image/png", "buffer": _solid_png(rgb)}
        page.locator("#input-menu-button").click()
        with page.expect_file_chooser() as dialog:
            page.get_by_role("menuitem", name="Upload Files").click()
        with page.expect_response(lambda r: "/api/v1/files" in r.url and r.request.method == "POST") as posted:
            dialog.value.set_files(files=[upload])
        if not posted.value.ok:
            raise StepFailed(f"Open WebUI refused the upload: {posted.value.status} {posted.value.text()[:300]}")
        page.wait_for_timeout(1000)  # the chat input takes the uploaded file
        run.send("What colour is this image?")
        message, _ = run.wait_answer(1)
        content = _check_answer(message)
        (run.out / "chat-image.json").write_text(json.dumps(message, indent=1))
        if name not in content.lower():
            raise StepFailed(f"the answer does not name {name}: {content[:200]!r}")
        return f"a {name} PNG uploaded in the chat, answer {content[:60]!r}"

    ok = run.step("open", open_page)
    ok = ok and run.step("model-picker", model_picker)
    ok = ok and run.step("streamed-chat", streamed_chat)
    ok = ok and run.step("saved-chat", saved_chat)
    ok and run.step("second-turn", second_turn)
    run.step("tools-native", tools("native"))
    run.step("tools-legacy", tools("legacy"))
    run.step("image-upload", image_upload)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webui", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--chat-model", required=True)
    parser.add_argument("--tool-model", required=True)
    parser.add_argument("--vision-model", required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        run = Run(page, args.webui, args.out)
        try:
            run_steps(run, args.chat_model, args.tool_model, args.vision_model)
        finally:
            browser.close()
    failed = [name for name, ok, _ in run.results if not ok]
    total = sum(took for _, _, took in run.results)
    print(f"{'FAIL' if failed else 'PASS'}: {len(run.results) - len(failed)}/{len(run.results)} browser steps in "
          f"{total:.1f} s{'; failed: ' + ', '.join(failed) if failed else ''}", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
