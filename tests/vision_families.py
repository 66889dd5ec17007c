"""Random-weight tiny vision models of the families mlx-shim serves images for beyond Gemma 3, each its real
mlx-vlm architecture (vision tower, projector, decoder) at small sizes, with its family's real tokenizer (from
tests/families.py: the test tokenizer cache, image tokens renamed in where the stand-in vocabulary lacks them)
and its real image processor class (transformers' PIL backend) at small image sizes, laid out as a pull leaves
a model: the server loads it as a pulled one. Untrained: tests read prompt token counts and logits, not answers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten

from tests.families import BY_NAME, family_tokenizer

_TEXT = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 2,
         "num_key_value_heads": 1, "rms_norm_eps": 1e-6, "max_position_embeddings": 4096}  # fmt: skip
_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
_QWEN_IDS = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
             "vision_end_token_id": 151653, "vision_token_id": 151654}  # fmt: skip
_QWEN_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "depth": 2, "patch_size": 14,
               "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 64}  # fmt: skip
# The Qwen image processor's pixel budget: 4 to 16 merged 28 x 28 patches, so the image's size sets the count.
_QWEN_PIXELS = {"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 16}
_QWEN_PROCESSOR = "qwen2_vl.image_processing_pil_qwen2_vl:Qwen2VLImageProcessorPil"
_LLAVA_PROCESSOR = {"patch_size": 14, "vision_feature_select_strategy": "default", "image_token": "<image>",
                    "num_additional_image_tokens": 1}  # fmt: skip
# LLaVA 1.6's tile grids (height, width) at 28-pixel tiles: the test images pick 2 x 3 and 3 x 4.
_LLAVA_NEXT_GRIDS = [[28, 56], [56, 28], [56, 56], [56, 84], [84, 112]]


@dataclasses.dataclass(frozen=True)
class VisionFamily:
    name: str
    tokenizer: str  # a tests/families.py family whose tokenizer (and template) this one uses
    config: dict[str, Any]
    processor: str  # transformers' PIL image processor, "module:Class"
    processor_args: dict[str, Any]
    processor_class: str  # the processor mlx-vlm / transformers builds around it
    added: tuple[str, ...] = ()  # special tokens added to the stand-in vocabulary (LLaVA's <image>)
    processor_config: dict[str, Any] = dataclasses.field(default_factory=dict)


def _qwen3(name: str, model_type: str, text_type: str, **text: Any) -> VisionFamily:
    """Qwen3-VL, dense or MoE: the same tower (16-pixel patches, deepstack from its first layer) and processor."""
    rope = {"rope_type": "default", "mrope_section": [4, 6, 6], "mrope_interleaved": True}
    tower = {**_QWEN_TOWER, "model_type": model_type, "patch_size": 16, "num_position_embeddings": 64,
             "deepstack_visual_indexes": [0]}  # fmt: skip
    config = {"model_type": model_type, **_QWEN_IDS, "vision_config": tower,
              "text_config": {**_TEXT, "model_type": text_type, "head_dim": 32, "rope_theta": 5e6, "rope_scaling": rope,
                              **text}}  # fmt: skip
    pixels = {"size": {"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 16}, "patch_size": 16,
              "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}  # fmt: skip
    return VisionFamily(name, "qwen3", config, _QWEN_PROCESSOR, pixels, "Qwen3VLProcessor")


FAMILIES = (
    VisionFamily(
        "qwen2.5vl",
        "qwen2.5",
        {
            "model_type": "qwen2_5_vl",
            **_TEXT,
            **_QWEN_IDS,
            "tie_word_embeddings": True,
            "rope_theta": 1e6,
            "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
            "vision_config": {
                **_QWEN_TOWER,
                "model_type": "qwen2_5_vl",
                "window_size": 112,
                "fullatt_block_indexes": [1],
            },
        },  # fmt: skip
        _QWEN_PROCESSOR,
        {"size": _QWEN_PIXELS},
        "Qwen2_5_VLProcessor",
    ),
    *(
        _qwen3("qwen3-vl", "qwen3_vl", "qwen3_vl", tie_word_embeddings=True),
        _qwen3(
            "qwen3-vl-moe",
            "qwen3_vl_moe",
            "qwen3_vl_moe_text",
            tie_word_embeddings=False,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            decoder_sparse_step=1,
            mlp_only_layers=[],
            norm_topk_prob=True,
        ),
    ),  # fmt: skip
    VisionFamily(
        "mistral-small3.1",
        "mistral-small3.2",
        {
            "model_type": "mistral3",
            "image_token_index": 10,
            "spatial_merge_size": 2,
            "multimodal_projector_bias": False,
            "vision_feature_layer": -1,
            "text_config": {**_TEXT, "model_type": "mistral", "head_dim": 32, "rope_theta": 1e9},
            "vision_config": {
                **_TOWER,
                "model_type": "pixtral",
                "head_dim": 16,
                "patch_size": 14,
                "image_size": 224,
                "rope_theta": 10000.0,
            },
        },  # fmt: skip
        "pixtral.image_processing_pil_pixtral:PixtralImageProcessorPil",
        {"size": {"longest_edge": 112}, "patch_size": 14},
        "PixtralProcessor",
        processor_config={
            "patch_size": 14,
            "spatial_merge_size": 2,
            "image_token": "[IMG]",
            "image_break_token": "[IMG_BREAK]",
            "image_end_token": "[IMG_END]",
        },  # fmt: skip
    ),
    VisionFamily(
        "llava",
        "llama3.2",
        {
            "model_type": "llava",
            "image_token_index": 128256,
            "vision_feature_layer": -2,
            "vision_feature_select_strategy": "default",
            "projector_hidden_act": "gelu",
            "text_config": {**_TEXT, "model_type": "llama", "rope_theta": 10000.0},
            "vision_config": {
                **_TOWER,
                "model_type": "clip_vision_model",
                "patch_size": 14,
                "image_size": 56,
                "projection_dim": 32,
            },
        },  # fmt: skip
        "clip.image_processing_pil_clip:CLIPImageProcessorPil",
        {"size": {"shortest_edge": 56}, "crop_size": {"height": 56, "width": 56}},
        "LlavaProcessor",
        added=("<image>",),
        processor_config=_LLAVA_PROCESSOR,
    ),
    VisionFamily(
        "llava-next",
        "llama3.2",
        {
            "model_type": "llava_next",
            "image_token_index": 128256,
            "vision_feature_layer": -2,
            "vision_feature_select_strategy": "default",
            "image_grid_pinpoints": _LLAVA_NEXT_GRIDS,
            "text_config": {**_TEXT, "model_type": "llama", "rope_theta": 10000.0},
            "vision_config": {**_TOWER, "model_type": "clip_vision_model", "patch_size": 14, "image_size": 28},
        },  # fmt: skip
        "llava_next.image_processing_pil_llava_next:LlavaNextImageProcessorPil",
        {
            "size": {"shortest_edge": 28},
            "crop_size": {"height": 28, "width": 28},
            "image_grid_pinpoints": _LLAVA_NEXT_GRIDS,
        },  # fmt: skip
        "LlavaNextProcessor",
        added=("<image>",),
        processor_config=_LLAVA_PROCESSOR,
    ),
)
BY_VISION_NAME = {f.name: f for f in FAMILIES}


def build_vision_family_model(family: VisionFamily, target: Path, seed: int = 0) -> Path:
    """A random-weight model of `family` in `target`, in the layout a pull leaves."""
    target.mkdir(parents=True, exist_ok=True)
    text_family = BY_NAME[family.tokenizer]
    vocabulary = family_tokenizer(dataclasses.replace(text_family, added=text_family.added + family.added), target)
    config = json.loads(json.dumps(family.config))
    text = config.get("text_config", config)
    text["vocab_size"] = config["vocab_size"] = max(text_family.vocab_size, max(vocabulary.values()) + 1)
    config["eos_token_id"] = eos = [vocabulary[t] for t in text_family.eos]
    (target / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (target / "generation_config.json").write_text(json.dumps({"eos_token_id": eos}), encoding="utf-8")
    _write_processor_files(family, target)

    mx.random.seed(seed)
    model = vlm_model(config)
    weights = dict(tree_flatten(model.parameters()))
    mx.save_safetensors(str(target / "model.safetensors"), weights, metadata={"format": "mlx"})
    return target


def vlm_model(config: dict[str, Any]) -> Any:
    """mlx-vlm's model of a config.json, with random weights, its configs prepared as mlx-vlm's load_model does."""
    import importlib

    from mlx_vlm.utils import update_module_configs

    config = json.loads(json.dumps(config))
    config.setdefault("text_config", {})
    config.setdefault("vision_config", {})
    module = importlib.import_module(f"mlx_vlm.models.{config['model_type']}")
    modules = ["text", "vision", "projector"]
    settings = update_module_configs(module.ModelConfig.from_dict(config), module, config, modules)
    return module.Model(settings)


def _write_processor_files(family: VisionFamily, target: Path) -> None:
    import importlib

    module_name, class_name = family.processor.split(":")
    image_processor = getattr(importlib.import_module(f"transformers.models.{module_name}"), class_name)
    image_processor(**family.processor_args).to_json_file(str(target / "preprocessor_config.json"))
    spec = {"processor_class": family.processor_class, **family.processor_config}
    (target / "processor_config.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
