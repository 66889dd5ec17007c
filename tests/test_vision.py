"""Images through every API, on the tiny trained Gemma 3 vision model (scripts/tiny_model/vision.py): it
names the colour of a solid-colour image, so an answer that follows the image proves the pixels reached the
model. Driven by the official `ollama`, `openai` and `anthropic` clients and LangChain, through the real
server; text-only models keep Ollama's refusal.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from PIL import Image

from tests.conftest import Server, cli

GREEDY = {"temperature": 0, "num_predict": 8}
MODEL = "tiny-vision"
# Gemma's own chat template refuses a `tool` turn; this Go TEMPLATE (Ollama's gemma3 layout) renders it as a
# user turn, so a screenshot sent back in a tool_result reaches the model.
GO_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- else }}<start_of_turn>user
{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- end }}
{{- end }}"""


def png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


RED, GREEN, BLUE = png((220, 30, 30)), png((30, 180, 40), (300, 500)), jpeg((30, 60, 220), (1024, 64))
ASK = "What colour is this image?"
RED_B64 = base64.b64encode(RED).decode()


@pytest.fixture(scope="module")
def vision(server: Server, tiny_vision_model_dir: Path) -> Server:
    for name, extra in ((MODEL, ""), (MODEL + "-go", f'TEMPLATE """{GO_TEMPLATE}"""\n')):
        modelfile = server.home / f"{name}.Modelfile"
        modelfile.write_text(f"FROM {tiny_vision_model_dir}\n{extra}")
        result = cli("create", name, "-f", str(modelfile), env=server.env)
        assert result.returncode == 0, result.stderr
    return server


@pytest.fixture(scope="module")
def client(vision: Server) -> ollama.Client:
    return ollama.Client(host=vision.url)


def test_chat_names_each_colour_streamed_and_not(client: ollama.Client) -> None:
    for image, colour in ((RED, "Red."), (GREEN, "Green."), (BLUE, "Blue.")):
        answer = client.chat(MODEL, [{"role": "user", "content": ASK, "images": [image]}], options=GREEDY)
        assert answer.message.content == colour
        streamed = client.chat(
            MODEL, [{"role": "user", "content": ASK, "images": [image]}], options=GREEDY, stream=True
        )
        assert "".join(part.message.content or "" for part in streamed) == colour


def test_generate_with_images(client: ollama.Client) -> None:
    assert client.generate(MODEL, ASK, images=[GREEN], options=GREEDY).response == "Green."


def test_images_in_earlier_turns(client: ollama.Client) -> None:
    """The latest image decides; an earlier turn's image and answer stay in the prompt."""
    messages = [
        {"role": "user", "content": ASK, "images": [RED]},
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": ASK, "images": [BLUE]},
    ]
    answer = client.chat(MODEL, messages, options=GREEDY)
    assert answer.message.content == "Blue."
    alone = client.chat(MODEL, messages[2:], options=GREEDY)
    assert alone.message.content == "Blue."
    assert (answer.prompt_eval_count or 0) > (alone.prompt_eval_count or 0) + 4  # the first image's 4 tokens too


def test_text_requests_to_the_vision_model_still_answer(client: ollama.Client) -> None:
    answer = client.chat(MODEL, [{"role": "user", "content": ASK}], options=GREEDY)
    assert answer.done_reason in ("stop", "length")


def test_openai_image_url_parts(vision: Server) -> None:
    oai = openai.OpenAI(base_url=vision.url + "/v1", api_key="ollama", max_retries=0)
    url = "data:image/png;base64," + RED_B64
    content: Any = [{"type": "text", "text": ASK}, {"type": "image_url", "image_url": {"url": url}}]
    messages: Any = [{"role": "user", "content": content}]
    answer = oai.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=8)
    assert answer.choices[0].message.content == "Red."
    stream = oai.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=8, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Red."
    remote: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model=MODEL, messages=remote)
    assert "image URLs are not currently supported, please use base64 encoded data instead" in str(refused.value)


def test_anthropic_image_blocks_and_tool_results(vision: Server) -> None:
    claude = anthropic.Anthropic(base_url=vision.url, api_key="ollama", max_retries=0)
    image: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}}
    image["source"]["data"] = base64.b64encode(GREEN).decode()
    asked: Any = [{"role": "user", "content": [image, {"type": "text", "text": ASK}]}]
    body = {"model": MODEL, "max_tokens": 8, "extra_body": {"temperature": 0}}
    answer = claude.messages.create(messages=asked, **body)
    assert answer.content[0].type == "text" and answer.content[0].text == "Green."
    with claude.messages.stream(messages=asked, **body) as stream:
        assert stream.get_final_text() == "Green."
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [{**image, "source": {**image["source"]}}]}
    result["content"][0]["source"]["data"] = base64.b64encode(BLUE).decode()
    turns: Any = [
        {"role": "user", "content": "Take a screenshot."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}]},
        {"role": "user", "content": [result]},
    ]
    screenshot = claude.messages.create(messages=turns, **{**body, "model": MODEL + "-go"})
    assert screenshot.content[0].type == "text" and screenshot.content[0].text == "Blue."


def test_langchain_image_part(vision: Server) -> None:
    chat_ollama = pytest.importorskip("langchain_ollama")
    from langchain_core.messages import HumanMessage

    llm = chat_ollama.ChatOllama(model=MODEL, base_url=vision.url, temperature=0, num_predict=8)
    url = "data:image/png;base64," + RED_B64
    message = HumanMessage(content=[{"type": "text", "text": ASK}, {"type": "image_url", "image_url": url}])
    assert llm.invoke([message]).content == "Red."


def test_capabilities_and_show(client: ollama.Client) -> None:
    shown = client.show(MODEL)
    assert "vision" in (shown.capabilities or [])
    info = shown.modelinfo or {}
    assert info["gemma3.vision.block_count"] == 1 and info["gemma3.vision.patch_size"] == 14
    assert "vision" not in (client.show("qwen-tiny").capabilities or [])


def test_errors_as_ollama(vision: Server) -> None:
    text_only = httpx.post(
        vision.url + "/api/chat",
        json={
            "model": "qwen-tiny",
            "messages": [{"role": "user", "content": ASK, "images": [RED_B64]}],
        },
        timeout=60,
    )
    assert text_only.status_code == 400
    assert text_only.json() == {"error": "this model is missing data required for image input"}
    garbage = base64.b64encode(b"not an image").decode()
    bad = httpx.post(
        vision.url + "/api/chat",
        json={"model": MODEL, "stream": False, "messages": [{"role": "user", "content": ASK, "images": [garbage]}]},
        timeout=60,
    )
    assert bad.status_code == 400 and bad.json()["error"].startswith("failed to process inputs: ")
    after = httpx.post(
        vision.url + "/api/generate",
        json={"model": MODEL, "prompt": ASK, "images": [RED_B64], "stream": False,
              "options": GREEDY},
        timeout=60,
    )  # fmt: skip
    assert after.json()["response"] == "Red."


def test_images_are_prepared_without_mlx_and_the_tower_runs_a_piece_per_image(tiny_vision_model_dir: Path) -> None:
    """In-process: a request's images are decoded and processed into numpy (the prep pool's part), then its
    input embeddings take one engine piece per image plus the merge, and equal mlx-vlm's own
    get_input_embeddings over all the images at once."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from mlx_vlm.utils import load_model, load_processor

    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import Vision
    from shim.engine.vision_families import FAMILIES
    from shim.engine.vision_tower import ImageEmbedding
    from shim.options import GenerationOptions

    # mlx-vlm's model whole (the server shares mlx-lm's decoder instead: not what this test is about), with
    # its processor's tokenizer: one tokenizer load instead of two
    processor = load_processor(tiny_vision_model_dir, add_detokenizer=False)
    vision = Vision(load_model(tiny_vision_model_dir), processor, FAMILIES["gemma3"])
    vision.model.set_dtype(mx.float32)  # as the engine loads it on the CPU backend
    stored = StoredModel(ModelName.parse("v"), tiny_vision_model_dir, {}, "0", 0)
    message = Message("user", ASK, images=[RED, GREEN, BLUE])
    tokenizer = TokenizerWrapper(processor.tokenizer)
    inputs = vision.preprocess(CompletionRequest(stored, GenerationOptions(), [message]), tokenizer, 4096)
    assert all(isinstance(array, np.ndarray) for array in inputs.arrays.values())
    assert inputs.tokens.count(vision.model.config.image_token_index) == 3 * 4  # 4 tokens per image here
    embedding = ImageEmbedding(vision, inputs)
    pieces, made = 1, embedding.advance()
    while made is None:
        pieces, made = pieces + 1, embedding.advance()
    assert pieces == 4 and made.tokens == inputs.tokens
    vlm, pixels, ids = vision.model, mx.array(inputs.arrays["pixel_values"]), mx.array(inputs.tokens)[None]
    tower, _, _ = vlm.vision_tower(pixels.transpose(0, 2, 3, 1), output_hidden_states=True)
    assert mx.allclose(mx.concatenate(embedding.features), vlm.multi_modal_projector(tower), atol=1e-5)
    whole = vlm.get_input_embeddings(ids, pixels, mask=mx.ones(ids.shape)).inputs_embeds[0]
    assert made.embeddings.shape == (len(inputs.tokens), 64) and mx.allclose(made.embeddings, whole, atol=1e-5)


def test_a_model_whose_tower_did_not_load_refuses_images_before_any_work(tiny_vision_model_dir: Path) -> None:
    """The prep pool refuses a request with images for a model served text-only (its tower failed to load,
    logged then) with Ollama's words, before decoding or rendering anything."""
    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine.prep_pool import prepare_completion
    from shim.engine.types import CompletionRequest, Message
    from shim.errors import Kind, ShimError
    from shim.options import GenerationOptions

    stored = StoredModel(ModelName.parse("v"), tiny_vision_model_dir, {}, "0", 0)
    req = CompletionRequest(stored, GenerationOptions(), [Message("user", ASK, images=[b"not even an image"])])
    with pytest.raises(ShimError) as refused:
        prepare_completion(req, tokenizer=None, vision=None)
    assert refused.value.message == "this model is missing data required for image input"
    assert refused.value.kind is Kind.BAD_INPUT


def test_a_photo_is_decoded_at_a_smaller_scale_and_the_tower_sees_the_same_pixels(tiny_vision_model_dir: Path) -> None:
    """A large JPEG is decoded at the libjpeg scale that still covers the processor's fixed 224×224
    (image_decode.py: a sixteenth of the pixels here): the pixel_values the tower gets stay within 16 levels
    of 255 of those from the full decode at the sharpest edges, and within one level on average (pixels are
    normalized to [-1, 1]: a level is 2/255)."""
    import numpy as np
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from mlx_vlm.utils import load_processor

    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine.image_decode import decode_image
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import Vision
    from shim.engine.vision_families import FAMILIES
    from shim.options import GenerationOptions

    height, width = 1512, 2016
    y, x = np.mgrid[0:height, 0:width]
    squares = ((x // 97 + y // 61) % 2) * 200  # sharp edges, where two filters differ most
    pixels = np.stack([x * 255 / width, y * 255 / height, squares], -1)
    pixels += np.random.default_rng(0).normal(0, 8, pixels.shape)  # grain, as a photo's
    photo = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(photo, "JPEG", quality=90)
    processor = load_processor(tiny_vision_model_dir, add_detokenizer=False)
    vision = Vision(None, processor, FAMILIES["gemma3"])  # the processor's half: no tower needed
    assert vision.fits == (224, 224) and decode_image(photo.getvalue(), vision.fits).size == (504, 378)
    stored = StoredModel(ModelName.parse("v"), tiny_vision_model_dir, {}, "0", 0)
    req = CompletionRequest(stored, GenerationOptions(), [Message("user", ASK, images=[photo.getvalue()])])
    seen = vision.preprocess(req, TokenizerWrapper(processor.tokenizer), 4096).arrays["pixel_values"]
    whole = Image.open(io.BytesIO(photo.getvalue())).convert("RGB")
    plain = processor.image_processor(images=[whole], return_tensors="np")["pixel_values"]
    level = 2 / 255
    assert seen.shape == plain.shape == (1, 3, 224, 224)
    assert np.abs(seen - plain).max() <= 16 * level and np.abs(seen - plain).mean() <= level


def test_a_request_with_images_decodes_in_the_text_batch_once_prefilled(tiny_vision_model_dir: Path) -> None:
    """In-process, as the engine runs a vision model's batch: beside a running text stream, a request with
    images is prefilled in the lane, then joins the text batch with its cache, leaving the lane free for the
    next one, and answers as it does alone (where it decodes in the lane); its cache never serves a later
    prompt."""
    import mlx.core as mx

    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine.batch import Sequence
    from shim.engine.mlx_lm_api import load_model
    from shim.engine.runner import Completion, sampler
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import load_vision
    from shim.engine.vision_lane import VisionBatch
    from shim.options import GenerationOptions

    text_model, tokenizer = load_model(str(tiny_vision_model_dir))
    text_model.set_dtype(mx.float32)  # as the engine loads it on the CPU backend
    vision = load_vision(tiny_vision_model_dir, text_model)
    stored = StoredModel(ModelName.parse("v"), tiny_vision_model_dir, {}, "0", 0)
    opts = GenerationOptions(temperature=0, num_predict=8, num_ctx=4096)
    inputs = vision.preprocess(CompletionRequest(stored, opts, [Message("user", ASK, images=[RED])]), tokenizer, 4096)
    ends = list(tokenizer.eos_token_ids)

    class Inbox:
        cancelled = threading.Event()

        def put(self, event: Any) -> None:
            pass

    def sequence(prompt: list[int], num_predict: int, text: list[str], processors: list[Any]) -> Sequence:
        options = GenerationOptions(temperature=0, num_predict=num_predict, num_ctx=4096)
        emit = lambda piece: text.append(piece.content)  # noqa: E731
        completion = Completion(tokenizer, prompt, options, think=False, shift=False, tools=None, emit=emit)
        return Sequence(listener=Inbox(), completion=completion, sampler=sampler(options), processors=processors,
                        exclusive=False, stateful=False, shift=False, num_ctx=4096, num_keep=0, load_ns=0)  # fmt: skip

    def answer(with_text: bool) -> tuple[str, bool, bool]:
        """The answer, whether it joined the batch, whether the lane had room while it decoded there."""
        batch = VisionBatch(text_model, vision, num_parallel=4, cache_bytes=1 << 30)
        if with_text:  # a stream that never ends on its own (its end tokens banned) for as long as this runs
            ban = lambda tokens, logits: logits.at[:, ends].add(-1e9)  # noqa: E731
            batch.admit(sequence(tokenizer.encode("Describe the sea."), 200, [], [ban]))
            for _ in range(3):
                batch.step()
        text: list[str] = []
        seeing = sequence(inputs.tokens, 8, text, [])
        batch.admit_vision(seeing, inputs)
        joined = lane_free = False
        while any(s is seeing for s in batch.sequences.values()):
            batch.step()
            if batch.seeing is None and any(s is seeing for s in batch.sequences.values()):
                joined, lane_free = True, batch.has_vision_room()
        assert batch.prompt_cache is not None
        assert batch.prompt_cache.fetch_nearest_cache("model", seeing.context)[0] is None
        return "".join(text), joined, lane_free

    assert answer(with_text=False) == ("Red.", False, False)
    assert answer(with_text=True) == ("Red.", True, True)
