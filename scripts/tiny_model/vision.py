"""Build a tiny but real, trained Gemma 3 vision model that names the colour of a solid-colour image.

The architecture is the real one both libraries load: mlx-vlm's ``gemma3`` (a SigLIP vision tower, Gemma 3's
multi-modal projector) around mlx-lm's ``gemma3_text`` decoder, at small dimensions (vision hidden 32, one
layer; text hidden 64, two layers). The tokenizer and chat template are Google's real Gemma 3 ones (from the
test tokenizer cache ``scripts/fetch_test_tokenizers.sh`` fills), ``preprocessor_config.json`` is transformers'
PIL ``Gemma3ImageProcessorPil`` at its class defaults (224 x 224: any image size is resized to it), and
``processor_config.json`` gives the 4 image tokens this tower's pooling leaves per image.

Training runs the model exactly as the server does: mlx-vlm's ``get_input_embeddings`` puts the projected
image features at the image tokens, and mlx-lm's decoder reads those embeddings. The loss is taken only on
the answer tokens (``Red.``), so the 262k-entry vocabulary costs a few rows of logits per example.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
    "orange": (250, 140, 20),
    "purple": (130, 40, 170),
}
QUESTIONS = (
    "",  # an image alone (a screenshot sent back as a tool result)
    "What colour is this image?",
    "What color is this?",
    "Which colour do you see?",
    "Describe the image.",
    "What is in this picture?",
)
IMAGE_TOKENS = 4  # 16 x 16 patches pooled 8 x 8: 2 x 2 tokens per image
TOKENIZER_CACHE = pathlib.Path(
    os.environ.get("MLX_SHIM_TEST_TOKENIZERS", pathlib.Path.home() / ".cache" / "mlx-shim-test-tokenizers")
)


def answer(colour: str) -> str:
    """Short, so that few positions pay for the 262k-entry vocabulary's logits."""
    return f"{colour.capitalize()}."


def config() -> dict:
    text = {
        "model_type": "gemma3_text",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "query_pre_attn_scalar": 32,
        "rms_norm_eps": 1e-6,
        "sliding_window": 512,
        "sliding_window_pattern": 2,
        "max_position_embeddings": 4096,
        "rope_global_base_freq": 1_000_000.0,
        "rope_local_base_freq": 10_000.0,
        "mm_tokens_per_image": IMAGE_TOKENS,
        "vocab_size": 262208,
    }
    vision = {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "patch_size": 14,
        "image_size": 224,
        "num_channels": 3,
        "layer_norm_eps": 1e-6,
    }
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": text,
        "vision_config": vision,
        "hidden_size": 64,
        "mm_tokens_per_image": IMAGE_TOKENS,
        "boi_token_index": 255999,
        "eoi_token_index": 256000,
        "image_token_index": 262144,
        "vocab_size": 262208,
        "eos_token_id": [1, 106],
        "max_position_embeddings": 4096,
    }


def write_processor_files(out: pathlib.Path) -> None:
    """The real Gemma 3 image processor at its class defaults, and the processor's image token count."""
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    processor = Gemma3ImageProcessorPil()
    processor.to_json_file(str(out / "preprocessor_config.json"))
    spec = {"processor_class": "Gemma3Processor", "image_seq_length": IMAGE_TOKENS}
    (out / "processor_config.json").write_text(json.dumps(spec, indent=2) + "\n")


def copy_tokenizer(out: pathlib.Path) -> None:
    source = TOKENIZER_CACHE / "gemma3"
    if not (source / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no Gemma 3 tokenizer in {source}: run scripts/fetch_test_tokenizers.sh")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(source / name, out / name)
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 106]}) + "\n")


def solid(colour: tuple[int, int, int], size: tuple[int, int], rng: random.Random):
    from PIL import Image

    jitter = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in colour)
    return Image.new("RGB", size, jitter)


def build_tiny_vision_model(out_dir: str | os.PathLike, seed: int = 0, *, steps: int = 80, log=None) -> pathlib.Path:
    """Write the model to `out_dir` (config, weights, tokenizer, processor configs) and return its path."""
    from mlx_lm.models import gemma3 as lm_gemma3
    from mlx_vlm.models import gemma3 as vlm_gemma3
    from mlx_vlm.utils import load_processor, update_module_configs

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config()
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    copy_tokenizer(out)
    write_processor_files(out)

    mx.random.seed(seed)
    rng = random.Random(seed)
    text_model = lm_gemma3.Model(lm_gemma3.ModelArgs.from_dict(cfg))
    vlm_config = vlm_gemma3.ModelConfig.from_dict(cfg)
    model = vlm_gemma3.Model(update_module_configs(vlm_config, vlm_gemma3, cfg, ["text", "vision"]))
    model.language_model = text_model.language_model  # the decoder the server runs, as it shares it
    # mlx-vlm starts the projection at all ones (real weights replace it): every output dimension the same
    # sum, which hides the colour from the decoder until training pulls the columns apart. Start it random.
    projector = model.multi_modal_projector
    shape = projector.mm_input_projection_weight.shape
    projector.mm_input_projection_weight = mx.random.normal(shape) / shape[0] ** 0.5
    processor = load_processor(out, add_detokenizer=False)

    tokenizer = processor.tokenizer
    replies = {c: answer(c) + "<end_of_turn>" for c in COLOURS}
    width = max(len(tokenizer.encode(r, add_special_tokens=False)) for r in replies.values()) + 1

    def example(colour: str) -> tuple[str, list[str]]:
        """One conversation ending in `colour`'s answer, and the colours of its images in order; a third
        have an earlier turn with another image and its answer, so the latest image is the one named."""
        turns, colours = [], [colour]
        if rng.random() < 1 / 3:
            earlier = rng.choice([c for c in COLOURS if c != colour])
            turns += [
                {"role": "user", "content": processor.boi_token + rng.choice(QUESTIONS)},
                {"role": "assistant", "content": answer(earlier)},
            ]
            colours.insert(0, earlier)
        turns.append({"role": "user", "content": processor.boi_token + rng.choice(QUESTIONS)})
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return text + replies[colour], colours

    def batch(size: int):
        """Right-padded token rows, their pixels, and per row the `width` positions whose next token is scored;
        every colour in every batch (size is a multiple of their number), so each step's gradient sees them all."""
        rows, pixels = [], []
        for colour in list(COLOURS) * (size // len(COLOURS)):
            text, colours = example(colour)
            images = [solid(COLOURS[c], (rng.randint(8, 96), rng.randint(8, 96)), rng) for c in colours]
            inputs = processor(text=text, images=images, add_special_tokens=False)
            rows.append(np.array(inputs["input_ids"]).reshape(-1))
            pixels.append(np.array(inputs["pixel_values"]))
        ids = np.zeros((size, max(len(r) for r in rows) + 1), np.int32)
        scored = np.zeros((size, width), np.int32)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            scored[i] = np.arange(len(r) - width - 1, len(r) - 1)
        return mx.array(ids), mx.array(np.concatenate(pixels)), mx.array(scored)

    def loss_fn(mdl, ids, pixels, scored):
        embeds = mdl.get_input_embeddings(ids, pixels, mask=mx.ones(ids.shape)).inputs_embeds
        decoder = mdl.language_model
        hidden = decoder.model(ids, None, embeds)
        picked = mx.take_along_axis(hidden, scored[..., None], axis=1)
        logits = decoder.model.embed_tokens.as_linear(picked)
        targets = mx.take_along_axis(ids, scored + 1, axis=1)
        right = mx.all(mx.argmax(logits, axis=-1) == targets, axis=1).mean()  # whole answers, over all 262k
        return nn.losses.cross_entropy(logits, targets).mean(), right

    # The 262k x 64 table stays as initialised (its gradient and Adam state would cost most of a step's time);
    # the tied output head reads it, so the layers learn to point at the answer's rows.
    text_model.language_model.model.embed_tokens.freeze()
    # Gemma's norms scale by 1 + weight: a final scale of 4 gives the logits over 262k random rows the
    # spread an answer needs to stand out, which plain training would take most of its steps to reach.
    text_model.language_model.model.norm.weight = mx.full((cfg["text_config"]["hidden_size"],), 3.0)
    warmup = optim.linear_schedule(1e-3, 1e-2, 5)
    schedule = optim.join_schedules([warmup, optim.cosine_decay(1e-2, steps - 5, 5e-4)], [5])
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=0.0)
    step_fn = nn.value_and_grad(model, loss_fn)
    for step in range(steps):
        ids, pixels, scored = batch(8)
        (loss, right), grads = step_fn(model, ids, pixels, scored)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        if log is not None:
            log(step, float(loss), float(right))

    # Tied embeddings, as the loss read them: without lm_head in the file mlx-lm ties them too.
    weights = {k: v for k, v in tree_flatten(model.parameters()) if k != "language_model.lm_head.weight"}
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    return out
