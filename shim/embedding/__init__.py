"""Embeddings on MLX: a BERT encoder with the pooling its model declares, or a decoder's mean hidden state.

`load.py` reads an encoder model directory, `embed.py` turns texts into vectors for either kind (tokenize,
check or truncate to the context, batch), `bert.py` is the network and `pooling.py` the sentence-transformers
pooling. The engine tokenizes on its prep pool and embeds in slices on its worker thread; nothing here knows HTTP.
"""

from shim.embedding.embed import EmbedSlices, InputError, embed_texts, embedder_for, tokenize_texts
from shim.embedding.load import ENCODER_ARCHITECTURES, SentenceEncoder, load_encoder

__all__ = [
    "ENCODER_ARCHITECTURES",
    "EmbedSlices",
    "InputError",
    "SentenceEncoder",
    "embed_texts",
    "embedder_for",
    "load_encoder",
    "tokenize_texts",
]
