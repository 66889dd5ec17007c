"""Per-architecture facts: which mlx-lm (or shim encoder) model a GGUF architecture becomes, and where each GGUF
tensor goes in it.

GGUF names (llama.cpp's, also Ollama's converter's) are `token_embd`, `output_norm`, `output` and per-block
`blk.N.<stem>`; the targets are the module paths mlx-lm's model classes load without renaming (their sanitize()
only drops tied heads and rotary buffers), or, for the encoders, the Hugging Face names the shim's BertModel and
NomicBertModel sanitize() map onto their modules.

Two facts of llama.cpp's converter are undone here: it permutes the Q/K rows of the llama family (llama, which
Mistral and SmolLM2 GGUFs use, and granite) into its interleaved rope layout, and it stores Gemma's RMSNorm weights
as w+1 (Gemma computes x*(1+w); mlx-lm's Gemma adds the 1 itself). Qwen, Gemma and Phi3 use NEOX rope, unpermuted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from registry.gguf.errors import GGUFError

_LLAMA_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GEMMA_BLOCK = {
    **_LLAMA_BLOCK,
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
_PHI3_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_qkv": "self_attn.qkv_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_up": "mlp.gate_up_proj",  # llama.cpp keeps Phi3's fused gate_up_proj as ffn_up, gate rows first
    "ffn_down": "mlp.down_proj",
}
_DECODER_GLOBALS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}

_BERT_GLOBALS = {
    "token_embd": "embeddings.word_embeddings",
    "token_types": "embeddings.token_type_embeddings",
    "position_embd": "embeddings.position_embeddings",
    "token_embd_norm": "embeddings.LayerNorm",
}
_BERT_BLOCK = {
    "attn_q": "attention.self.query",
    "attn_k": "attention.self.key",
    "attn_v": "attention.self.value",
    "attn_output": "attention.output.dense",
    "attn_output_norm": "attention.output.LayerNorm",
    "ffn_up": "intermediate.dense",
    "ffn_down": "output.dense",
    "layer_output_norm": "output.LayerNorm",
}
_NOMIC_GLOBALS = {
    "token_embd": "embeddings.word_embeddings",
    "token_types": "embeddings.token_type_embeddings",
    "token_embd_norm": "emb_ln",
}
_NOMIC_BLOCK = {
    "attn_qkv": "attn.Wqkv",
    "attn_output": "attn.out_proj",
    "attn_output_norm": "norm1",
    "ffn_up": "mlp.fc11",  # Nomic's y = fc11(x) * act(fc12(x)); llama.cpp calls fc12 the gate
    "ffn_gate": "mlp.fc12",
    "ffn_down": "mlp.fc2",
    "layer_output_norm": "norm2",
}

# Tensors llama.cpp stores to describe rope scaling; they become config (rope_scaling), not weights.
ROPE_TENSORS = ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight")
# Multimodal parts (Ollama's gemma3 holds its vision tower): a text model leaves them out and says so.
SKIPPED_PREFIXES = ("v.", "mm.", "a.")


@dataclass(frozen=True)
class Architecture:
    gguf_name: str
    model_type: str  # config.json's model_type: mlx-lm's module name, or the shim encoder's
    block: dict[str, str]
    globals: dict[str, str] = field(default_factory=lambda: dict(_DECODER_GLOBALS))
    layer_prefix: str = "model.layers.{}."
    permuted_qk: bool = False  # llama.cpp's rope row permutation to undo
    norm_offset: float = 0.0  # added to every norm weight (-1 for Gemma)
    encoder: bool = False

    def target(self, name: str) -> str:
        """The output tensor name for a GGUF tensor name, or GGUFError when the model has no such weight."""
        stem, dot, suffix = name.rpartition(".")
        if not dot or suffix not in ("weight", "bias"):
            raise self._no_place(name)
        if stem in self.globals:
            return f"{self.globals[stem]}.{suffix}"
        match = re.fullmatch(r"blk\.(\d+)\.(.+)", stem)
        if match and match[2] in self.block:
            return f"{self.layer_prefix.format(int(match[1]))}{self.block[match[2]]}.{suffix}"
        raise self._no_place(name)

    def offset_for(self, name: str) -> float:
        """Gemma's norm correction applies to every RMSNorm weight: block norms, q/k norms and output_norm."""
        return self.norm_offset if name.endswith("_norm.weight") else 0.0

    def _no_place(self, name: str) -> GGUFError:
        return GGUFError(f"tensor '{name}' of this {self.gguf_name} GGUF has no place in the {self.model_type} model")


ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("llama", "llama", _LLAMA_BLOCK, permuted_qk=True),
    "granite": Architecture("granite", "granite", _LLAMA_BLOCK, permuted_qk=True),
    "qwen2": Architecture("qwen2", "qwen2", _LLAMA_BLOCK),
    "qwen3": Architecture("qwen3", "qwen3", _LLAMA_BLOCK),
    "gemma2": Architecture("gemma2", "gemma2", _GEMMA_BLOCK, norm_offset=-1.0),
    "gemma3": Architecture("gemma3", "gemma3_text", _GEMMA_BLOCK, norm_offset=-1.0),
    "phi3": Architecture("phi3", "phi3", _PHI3_BLOCK),
    "bert": Architecture(
        "bert", "bert", _BERT_BLOCK, globals=_BERT_GLOBALS, layer_prefix="encoder.layer.{}.", encoder=True
    ),
    "nomic-bert": Architecture(
        "nomic-bert",
        "nomic_bert",
        _NOMIC_BLOCK,
        globals=_NOMIC_GLOBALS,
        layer_prefix="encoder.layers.{}.",
        encoder=True,
    ),
}


def architecture(gguf_name: str) -> Architecture:
    arch = ARCHITECTURES.get(gguf_name)
    if arch is None:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise GGUFError(f"unsupported GGUF architecture '{gguf_name}' (supported: {supported})")
    return arch


def unpermute_order(rows: int, heads: int) -> list[int]:
    """Source row for each output row, undoing llama.cpp's `permute` (rows viewed as (heads, 2, half) were stored
    as (heads, half, 2)): output row h*hd + j*half + i comes from stored row h*hd + 2*i + j."""
    if heads <= 0 or rows % (2 * heads):
        raise GGUFError(f"cannot undo the rope permutation: {rows} rows do not split into {heads} heads")
    head_dim = rows // heads
    half = head_dim // 2
    order = []
    for h in range(heads):
        for j in range(2):
            order.extend(h * head_dim + 2 * i + j for i in range(half))
    return order
