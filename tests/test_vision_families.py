"""Images on each vision family beyond Gemma 3 (tests/vision_families.py: random-weight models of mlx-vlm's real
architectures with their real tokenizers and image processors), through the real server as pulled models: an
image's prompt holds the family's expanded image tokens (Qwen: one per merged 2 x 2 patch of the resized
image, with its start and end tokens; Pixtral: rows of patches closed by [IMG_BREAK] and [IMG_END]; LLaVA 1.5:
the tower's patch count; LLaVA 1.6: its tiles' patches packed, rows closed by image_newline), different images
give different logits, and text requests on the same model still decode together beside a request with images.
Untrained weights: no answer is read, only counts and logits.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from PIL import Image

from shim import commands
from shim.client import Client, ClientError
from tests.conftest import Server, start_server, stop_server
from tests.families import BY_NAME, family_tokenizer
from tests.vision_families import BY_VISION_NAME, build_vision_family_model

ASK = "What colour is this image?"
# Image tokens each family's processor makes for SMALL (60 x 40) and LARGE (200 x 120) at the test models'
# processor settings, worked out by hand from each processor's resize rule (tests/vision_families.py).
IMAGE_TOKENS = {
    # smart_resize to 28-pixel multiples within 4..16 merged patches: 56 x 84 (2 x 3), 84 x 140 (3 x 5);
    # plus <|vision_start|> and <|vision_end|>
    "qwen2.5vl": (6 + 2, 15 + 2),
    "qwen3-vl": (6 + 2, 15 + 2),  # the same with 16-pixel patches (32-pixel merged): 64 x 96, 96 x 160
    "qwen3-vl-moe": (6 + 2, 15 + 2),
    # longest edge 112, padded to 28: 56 x 84 -> 2 rows of 3, 84 x 112 -> 3 rows of 4, each row + one break/end
    "mistral-small3.1": (2 * (3 + 1), 3 * (4 + 1)),
    "llava": (16, 16),  # any image to 56 x 56: 4 x 4 patches (the CLS token dropped)
    # LLaVA 1.6, 28-pixel tiles of 2 x 2 patches: the whole image's 4, then the grid's patches unpadded, a newline
    # closing each row. 60 x 40 -> the 56 x 84 pinpoint (tiles 2 x 3, patches 4 x 6, no padding): 4 + 4 * (6 + 1);
    # 200 x 120 -> 84 x 112 (tiles 3 x 4, patches 6 x 8; 120 * 8 / 200 = 4.8 -> 4 rows): 4 + 4 * (8 + 1)
    "llava-next": (4 + 4 * 7, 4 + 4 * 9),
}
OPTIONS = {"temperature": 0, "num_predict": 1}


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


SMALL, LARGE = png((220, 30, 30), (60, 40)), png((30, 60, 220), (200, 120))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("vision-families-home"), {"OLLAMA_NUM_PARALLEL": "4"})
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module", params=sorted(BY_VISION_NAME))
def family(request: pytest.FixtureRequest, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The family's model built, created in the server's store by the CLI's own create, deleted after."""
    name: str = request.param
    model_dir = build_vision_family_model(BY_VISION_NAME[name], tmp_path_factory.mktemp(name) / "model")
    modelfile = server.home / f"{name}.Modelfile"
    modelfile.write_text(f"FROM {model_dir}\n")
    commands.create(Client(server.url), name, modelfile, None, io.StringIO())
    yield name
    httpx.request("DELETE", server.url + "/api/delete", json={"model": name}, timeout=60)


def chat(server: Server, model: str, images: list[str], **extra: Any) -> dict[str, Any]:
    message = {"role": "user", "content": ASK, "images": images}
    body = {"model": model, "messages": [message], "stream": False, "options": OPTIONS, **extra}
    resp = httpx.post(server.url + "/api/chat", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()


# Ollama's architecture name for each (its GGUF's general.architecture) and the test tower's layer count.
TOWERS = {
    "qwen2.5vl": ("qwen25vl", 2),
    "qwen3-vl": ("qwen3vl", 2),
    "qwen3-vl-moe": ("qwen3vlmoe", 2),
    "mistral-small3.1": ("mistral3", 1),
    "llava": ("llava", 1),
    "llava-next": ("llava_next", 1),
}


def test_capabilities_and_show_report_the_tower(server: Server, family: str) -> None:
    shown = httpx.post(server.url + "/api/show", json={"model": family}, timeout=60).json()
    assert "vision" in shown["capabilities"]
    arch, layers = TOWERS[family]
    assert shown["model_info"]["general.architecture"] == arch
    assert shown["model_info"][f"{arch}.vision.block_count"] == layers


def test_image_tokens_expand_and_images_change_the_logits(server: Server, family: str) -> None:
    text = chat(server, family, [])
    small = chat(server, family, [SMALL], logprobs=True, top_logprobs=5)
    large = chat(server, family, [LARGE], logprobs=True, top_logprobs=5)
    both = chat(server, family, [SMALL, LARGE])
    expected_small, expected_large = IMAGE_TOKENS[family]
    assert small["prompt_eval_count"] - text["prompt_eval_count"] == expected_small
    assert large["prompt_eval_count"] - text["prompt_eval_count"] == expected_large
    assert both["prompt_eval_count"] - text["prompt_eval_count"] == expected_small + expected_large
    first = [{t["token"]: t["logprob"] for t in r["logprobs"][0]["top_logprobs"]} for r in (small, large)]
    assert first[0] != first[1]  # the pixels reach the decoder: another image, another distribution


def _stream(server: Server, model: str, prompt: str, log: list[float]) -> str:
    body = {"model": model, "prompt": prompt, "raw": True, "options": {"temperature": 0, "num_predict": 24}}
    parts = []
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=120) as resp:
        for line in resp.iter_lines():
            if line:
                log.append(time.monotonic())
                parts.append(json.loads(line)["response"])
    return "".join(parts)


def test_text_requests_still_batch_beside_an_image(server: Server, family: str) -> None:
    """Two text streams and a request with images at once: the streams have their first tokens before either
    ends (they decode together in the batch) and answer as they do alone."""
    prompts = ("Tell me a story.", "Count to ten.")
    alone = [_stream(server, family, p, []) for p in prompts]
    logs: list[list[float]] = [[], []]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        seeing = pool.submit(chat, server, family, [LARGE])
        together = list(pool.map(lambda i: _stream(server, family, prompts[i], logs[i]), range(2)))
        assert seeing.result()["done"]
    assert together == alone
    assert max(log[0] for log in logs) < min(log[-1] for log in logs)


@pytest.mark.parametrize(("name", "quantized"), [("qwen2.5vl", False), ("qwen3-vl", True), ("qwen3-vl-moe", True)])
def test_qwen_lane_decoder_gives_mlx_vlms_own_logits(name: str, quantized: bool, tmp_path: Path) -> None:
    """The decoder a Qwen request with images runs on (mlx-vlm's, holding mlx-lm's arrays, with the prompt's 3-D
    positions and deepstack features), made as the server makes it (the request prepared into numpy as on the
    prep pool, image_grid_thw included; the tower and merge in engine pieces) and fed as the vision lane
    feeds it (prefill in chunks that split the image, then one token at a time), gives the logits of mlx-vlm's
    own model over its own copy of the weights; also for a 4-bit build made by mlx-vlm's convert, as the
    catalog's are (the shared arrays are packed ones)."""
    import numpy as np
    from mlx_vlm.convert import convert
    from mlx_vlm.models.cache import KVCache
    from mlx_vlm.utils import load_model

    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine import mlx_lm_api
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import load_vision
    from shim.engine.vision_tower import ImageEmbedding
    from shim.options import GenerationOptions

    model_dir = build_vision_family_model(BY_VISION_NAME[name], tmp_path / name)
    if quantized:
        convert(str(model_dir), str(tmp_path / "4bit"), quantize=True, q_group_size=32, q_bits=4)
        model_dir = tmp_path / "4bit"
    text_model, tokenizer = mlx_lm_api.load_model(str(model_dir))
    assert any(key.endswith(".scales") for key, _ in tree_flatten(text_model.parameters())) == quantized
    vision = load_vision(model_dir, text_model)
    reference: Any = load_model(model_dir)
    stored = StoredModel(ModelName.parse(name), model_dir, {}, "0", 0)
    message = Message("user", ASK, images=[base64.b64decode(LARGE)])
    inputs = vision.preprocess(CompletionRequest(stored, GenerationOptions(), [message]), tokenizer, 4096)
    assert all(isinstance(array, np.ndarray) for array in inputs.arrays.values())  # the prep pool makes no MLX
    embedding = ImageEmbedding(vision, inputs)
    made = embedding.advance()  # the image's tower piece, then the merge
    made = made or embedding.advance()
    assert made is not None and made.decoder is not None
    lane, ids = made.decoder, mx.array(made.tokens)[None]
    pixels, grid = (mx.array(inputs.arrays[k]) for k in ("pixel_values", "image_grid_thw"))
    cache = mlx_lm_api.make_prompt_cache(text_model)
    for start in range(0, ids.shape[1], 7):
        chunk = slice(start, start + 7)
        logits = lane(ids[:, chunk], cache=cache, input_embeddings=made.embeddings[None, chunk])
    own_cache = [KVCache() for _ in reference.language_model.layers]
    expected = reference(ids, pixels, cache=own_cache, image_grid_thw=grid).logits
    assert mx.allclose(logits[0, -1], expected[0, -1], atol=1e-4)
    for token in (5, 9):
        step = lane(mx.array([[token]]), cache=cache)
        assert mx.allclose(step, reference.language_model(mx.array([[token]]), cache=own_cache).logits, atol=1e-4)


@pytest.mark.parametrize("name", ["qwen2.5vl", "qwen3-vl", "qwen3-vl-moe", "mistral-small3.1", "llava"])
def test_each_image_is_its_own_tower_piece_and_the_merge_is_mlx_vlms(name: str, tmp_path: Path) -> None:
    """A request with two images of different sizes, prepared as on the prep pool: its input embeddings take one
    engine piece per image (tower, feature selection, projector over that image's share of the arrays) plus the
    merge, and equal mlx-vlm's own get_input_embeddings run whole over both images, on its own copy of the
    weights (and for Qwen, the 3-D positions its decoder reads; for Qwen3-VL, the deepstack features)."""
    from mlx_vlm.utils import load_model

    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine import mlx_lm_api
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import load_vision
    from shim.engine.vision_tower import ImageEmbedding
    from shim.options import GenerationOptions

    model_dir = build_vision_family_model(BY_VISION_NAME[name], tmp_path / name)
    text_model, tokenizer = mlx_lm_api.load_model(str(model_dir))
    vision = load_vision(model_dir, text_model)
    stored = StoredModel(ModelName.parse(name), model_dir, {}, "0", 0)
    message = Message("user", ASK, images=[base64.b64decode(SMALL), base64.b64decode(LARGE)])
    inputs = vision.preprocess(CompletionRequest(stored, GenerationOptions(), [message]), tokenizer, 4096)
    embedding = ImageEmbedding(vision, inputs)
    pieces, made = 1, embedding.advance()
    while made is None:
        pieces, made = pieces + 1, embedding.advance()
    assert pieces == 3 and made.tokens == inputs.tokens
    reference: Any = load_model(model_dir)
    reference.set_dtype(mx.float32)  # as load_vision sets it on the CPU backend
    ids = mx.array(inputs.tokens)[None]
    arrays = {k: mx.array(v) for k, v in inputs.arrays.items() if k != "attention_mask"}
    whole = reference.get_input_embeddings(ids, arrays.pop("pixel_values"), mask=mx.ones(ids.shape), **arrays)
    assert mx.allclose(made.embeddings, whole.inputs_embeds[0], atol=1e-4), name
    if made.decoder is not None:
        assert mx.array_equal(made.decoder.positions, whole.position_ids)
        if whole.deepstack_visual_embeds is not None:
            assert made.decoder.deepstack is not None
            assert mx.allclose(made.decoder.deepstack, mx.stack(list(whole.deepstack_visual_embeds)), atol=1e-4)


def test_pixtral_and_llava_are_prepared_into_numpy(tmp_path: Path) -> None:
    """On the prep pool a request's images become numpy only (no MLX off the engine thread), Pixtral's
    image_sizes and LLaVA 1.6's tile grids included, which their merges need (Qwen's:
    test_qwen_lane_decoder_gives_mlx_vlms_own_logits)."""
    import numpy as np
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from mlx_vlm.utils import load_processor

    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import Vision
    from shim.engine.vision_families import FAMILIES
    from shim.options import GenerationOptions

    for name in ("mistral-small3.1", "llava", "llava-next"):
        model_dir = build_vision_family_model(BY_VISION_NAME[name], tmp_path / name)
        model_type = json.loads((model_dir / "config.json").read_text())["model_type"]
        processor = load_processor(model_dir, add_detokenizer=False)
        vision = Vision(None, processor, FAMILIES[model_type])  # preparing needs no model
        stored = StoredModel(ModelName.parse(name), model_dir, {}, "0", 0)
        message = Message("user", ASK, images=[base64.b64decode(SMALL), base64.b64decode(LARGE)])
        req = CompletionRequest(stored, GenerationOptions(), [message])
        inputs = vision.preprocess(req, TokenizerWrapper(processor.tokenizer), 4096)
        assert all(isinstance(array, np.ndarray) for array in inputs.arrays.values()), name
        assert len(inputs.arrays["pixel_values"]) > 1, name
        assert model_type != "mistral3" or inputs.arrays["image_sizes"].tolist() == [[56, 84], [84, 112]]
        assert model_type != "llava_next" or inputs.arrays["image_grid"].tolist() == [[2, 3], [3, 4]]


def test_llava_next_packs_each_image_as_transformers_does(tmp_path: Path) -> None:
    """LLaVA 1.6's merge, made as the server makes it (prepared into numpy, then one engine piece): each image's
    features are the whole image's patches, then its grid's rows (60 x 40: 4 rows of 6 patches; 200 x 120: 4 of
    8, the padding rows cut), each row closed by the model's image_newline, at the prompt's <image> tokens; the
    text around them keeps its token embeddings."""
    from registry.names import ModelName
    from registry.store import StoredModel
    from shim.engine import mlx_lm_api
    from shim.engine.types import CompletionRequest, Message
    from shim.engine.vision import load_vision
    from shim.engine.vision_tower import ImageEmbedding
    from shim.options import GenerationOptions

    model_dir = build_vision_family_model(BY_VISION_NAME["llava-next"], tmp_path / "llava-next")
    text_model, tokenizer = mlx_lm_api.load_model(str(model_dir))
    vision = load_vision(model_dir, text_model)
    stored = StoredModel(ModelName.parse("llava-next"), model_dir, {}, "0", 0)
    message = Message("user", ASK, images=[base64.b64decode(SMALL), base64.b64decode(LARGE)])
    inputs = vision.preprocess(CompletionRequest(stored, GenerationOptions(), [message]), tokenizer, 4096)
    made = ImageEmbedding(vision, inputs).advance()
    assert made is not None
    tokens = mx.array(made.tokens)
    image = tokens == vision.model.config.image_token_index
    first = int(mx.argmax(image))
    newlines = [first + 4 + 7 * row + 6 for row in range(4)]
    second = first + sum(IMAGE_TOKENS["llava-next"][:1])
    newlines += [second + 4 + 9 * row + 8 for row in range(4)]
    assert int(image.sum()) == sum(IMAGE_TOKENS["llava-next"]) and bool(image[first : second + 40].all())
    newline = vision.model.image_newline.astype(made.embeddings.dtype)
    assert all(mx.array_equal(made.embeddings[i], newline) for i in newlines)
    assert sum(bool(mx.array_equal(row, newline)) for row in made.embeddings) == len(newlines)
    text = text_model.language_model.model.embed_tokens(tokens)
    keep = image[:, None]
    assert mx.array_equal(mx.where(keep, 0, made.embeddings), mx.where(keep, 0, text))


def test_llava_hf_configs_without_their_text_sizes_load_the_real_sizes() -> None:
    """llava-hf's LLaVA 1.5 7B and LLaVA 1.6 Mistral 7B configs leave out the text model's sizes that are
    transformers' defaults; mlx-lm's ModelArgs needs them, so the decoder is built at the published model's sizes
    (Vicuna 7B, Mistral 7B), the config's own values kept."""
    from shim.engine import mlx_lm_api

    published = {  # text_config as published, less keys mlx-lm does not read
        "llava": {"model_type": "llama", "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "vocab_size": 32064},
        "llava_next": {"model_type": "mistral", "intermediate_size": 14336, "num_key_value_heads": 8,
                       "max_position_embeddings": 32768, "rope_theta": 1000000.0, "vocab_size": 32064},
    }  # fmt: skip
    expected = {"llava": 11008, "llava_next": 14336}
    for model_type, text in published.items():
        classes = mlx_lm_api.model_classes({"model_type": model_type, "text_config": text})
        assert classes is not None, model_type
        args = classes[1].from_dict({"model_type": model_type, "text_config": dict(text)}).text_config
        sizes = [args[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")]
        assert sizes == [4096, 32, 32, expected[model_type]], model_type
        assert args["vocab_size"] == 32064


def test_llama_vision_is_refused_saying_why(server: Server, tmp_path: Path) -> None:
    """Llama 3.2 Vision (`mllama`) reads images through cross-attention layers mlx-lm has no model for: a create
    of one is refused before the name is registered, saying so (not "upgrade mlx-lm", which would not help)."""
    model_dir = tmp_path / "llama-vision"
    family_tokenizer(BY_NAME["llama3.2"], model_dir)
    text = {"model_type": "mllama_text_model", "hidden_size": 64, "num_hidden_layers": 2, "cross_attention_layers": [1]}
    config = {"model_type": "mllama", "architectures": ["MllamaForConditionalGeneration"], "text_config": text,
              "vision_config": {"model_type": "mllama_vision_model", "hidden_size": 32}}  # fmt: skip
    (model_dir / "config.json").write_text(json.dumps(config))
    mx.save_safetensors(str(model_dir / "model.safetensors"), {"language_model.lm_head.weight": mx.zeros((4, 4))})
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {model_dir}\n")
    with pytest.raises(ClientError) as refused:
        commands.create(Client(server.url), "llama-vision", modelfile, None, io.StringIO())
    assert "Llama 3.2 Vision's decoder reads images through cross-attention" in str(refused.value)
    assert httpx.post(server.url + "/api/show", json={"model": "llama-vision"}, timeout=60).status_code == 404


def _gemma3_inputs(config: dict[str, Any]) -> dict[str, Any]:
    config["text_config"]["mm_tokens_per_image"] = 16  # 224 / 14 = 16 patches a side, pooled to 4 x 4
    config["image_token_index"] = image = config["vocab_size"] - 1
    return {"ids": [2, *[image] * 16, 5], "pixel_values": mx.random.normal((1, 3, 224, 224))}


def _qwen_inputs(config: dict[str, Any]) -> dict[str, Any]:
    vision, top = config["vision_config"], config
    vision["out_hidden_size"] = config.get("text_config", config)["hidden_size"]
    top["image_token_id"], top["vision_start_token_id"], top["vision_end_token_id"] = 250, 251, 252
    channels = vision.get("in_channels", 3)  # 16 patches (4 x 4), merged 2 x 2 into 4 image tokens
    pixels = mx.random.normal((16, channels * vision["temporal_patch_size"] * vision["patch_size"] ** 2))
    return {"ids": [2, 251, *[250] * 4, 252, 5], "pixel_values": pixels, "image_grid_thw": mx.array([[1, 4, 4]])}


def _pixtral_inputs(config: dict[str, Any]) -> dict[str, Any]:
    image = config["image_token_index"]  # 56 x 56: 4 x 4 patches, merged 2 x 2
    return {
        "ids": [2, *[image] * 4, 5],
        "pixel_values": mx.random.normal((1, 3, 56, 56)),
        "image_sizes": mx.array([[56, 56]]),
    }


def _llava_next_inputs(config: dict[str, Any]) -> dict[str, Any]:
    config["image_token_index"] = image = config["vocab_size"] - 1  # 28 x 56 in two 28-pixel tiles of 2 x 2
    return {  # patches, after the whole image's 4: 2 rows of 4 patches, each closed by image_newline
        "ids": [2, *[image] * (4 + 2 * (4 + 1)), 5],
        "pixel_values": mx.random.normal((1, 3, 3, 28, 28)),
        "image_sizes": mx.array([[28, 56]]),
        "image_grid": mx.array([[1, 2]]),
    }


_SMALL_TOWER = {"hidden_size": 32, "intermediate_size": 64}
# Per vision family: its tower at toy sizes (every other key of the real one kept) and one image's model inputs.
CATALOG_TOWERS = {
    "gemma3": ({**_SMALL_TOWER, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 224}, _gemma3_inputs),
    "mistral3": ({**_SMALL_TOWER, "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 16}, _pixtral_inputs),
    "qwen2_5_vl": ({**_SMALL_TOWER, "depth": 2, "num_heads": 2, "fullatt_block_indexes": [1]}, _qwen_inputs),
    "qwen3_vl": ({**_SMALL_TOWER, "depth": 2, "num_heads": 2, "deepstack_visual_indexes": [0]}, _qwen_inputs),
    "llava_next": (
        {**_SMALL_TOWER, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28},
        _llava_next_inputs,
    ),
}
# Shapes read without their tower (Ministral 3's, from transformers' text config): Mistral Small 3.1's Pixtral
# tower stands in, so mlx-vlm's mistral3 still runs over mlx-lm's ministral3 decoder as the server would.
TOWER_FROM = {"Ministral-3-8B-2512": "Mistral-Small-3.1-24B-Instruct-2503"}


def test_catalog_vision_shapes_build_and_run_in_the_pinned_mlx_vlm() -> None:
    """Every catalog tag with `vision` names a shape of a family mlx-shim serves images for, whose config (shrunk,
    random weights) the pinned mlx-vlm builds, and which runs as the server runs it: mlx-lm's decoder of the same
    shape shared into mlx-vlm's model (vision_families.share_decoder), one image's tokens through the tower and
    projector, and the decoder the vision lane would run (mlx-lm's, or Qwen's positioned one) over them."""
    from registry.catalog import Catalog
    from registry.model_dir import VISION_ARCHITECTURES, vision_capable
    from shim.engine import mlx_lm_api
    from shim.engine.vision_families import FAMILIES, decoder, input_embeddings, share_decoder
    from tests.test_catalog_shapes import SHAPES, shrink
    from tests.vision_families import vlm_model

    entries = [e for e in Catalog.load().models.values() if "vision" in e.capabilities and e.shape]
    served = {e.shape for e in entries if e.model_type in VISION_ARCHITECTURES}
    not_in_catalog = {"llava", "qwen3_vl_moe"}  # README, Vision: why
    assert {SHAPES[s]["config"]["model_type"] for s in served} == set(CATALOG_TOWERS) == set(FAMILIES) - not_in_catalog
    for name in sorted(served):
        config = shrink(SHAPES[name]["config"])
        if name in TOWER_FROM:
            config = {**shrink(SHAPES[TOWER_FROM[name]]["config"]), "text_config": config["text_config"]}
        assert vision_capable(config), name
        tower, make_inputs = CATALOG_TOWERS[config["model_type"]]
        config["vision_config"] = {**config["vision_config"], **tower}
        inputs = make_inputs(config)
        mx.random.seed(0)
        vlm = vlm_model(config)
        classes = mlx_lm_api.model_classes(config)
        assert classes is not None, name
        model_class, args_class = classes
        text_model = model_class(args_class.from_dict(config))
        family = FAMILIES[config["model_type"]]
        share_decoder(family, vlm, text_model)
        ids = mx.array([inputs.pop("ids")])
        features = input_embeddings(family, vlm, ids, inputs.pop("pixel_values"), mask=mx.ones(ids.shape), **inputs)
        run = decoder(family, vlm, features) or text_model
        logits = run(ids, cache=mlx_lm_api.make_prompt_cache(text_model), input_embeddings=features.inputs_embeds)
        assert logits.shape == (1, ids.shape[1], config.get("text_config", config)["vocab_size"]), name
        assert bool(mx.isfinite(logits).all()), name
