"""The `tokenizers` model behind each GGUF vocabulary kind, rebuilt from `tokenizer.ggml.*` metadata.

llama.cpp's converter (convert_hf_to_gguf.py) writes every kind as one flat token list in id order plus a parallel
`token_type` list, and then what the kind needs: merges ("a b" strings) for byte-level BPE, scores for
SentencePiece, nothing for WordPiece. Each builder below undoes what that converter did to its kind, so the ids
come out as the original tokenizer's:

- gpt2: normal tokens are stored in GPT-2's byte alphabet, control/user-defined ones as plain text. All of them
  go into the BPE vocabulary at their id, so the added tokens keep their ids.
- llama: SentencePiece BPE. Merges are rebuilt from the scores (the file has none): a merge's rank is the score
  of the piece it makes, which is the order SentencePiece itself merges in.
- bert: the converter wrote word-initial pieces with a "▁" prefix ("phantom space") and continuation pieces
  without their "##"; that is reversed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE, WordPiece

from registry.gguf.errors import GGUFError
from registry.gguf.pretokenize import ByteLevelSplit

# llama.cpp's token types (gguf TokenType).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

SPIECE_SPACE = "\u2581"


def token_types(metadata: dict[str, Any], n_tokens: int) -> list[int]:
    """The type of every token; a file without the list has only normal tokens (as llama.cpp reads it)."""
    types = list(metadata.get("tokenizer.ggml.token_type") or [])
    if not types:
        return [NORMAL] * n_tokens
    if len(types) < n_tokens:
        raise GGUFError(f"GGUF tokenizer has {len(types)} token types for {n_tokens} tokens")
    return [int(t) for t in types[:n_tokens]]


def id_vocab(tokens: Sequence[str]) -> dict[str, int]:
    """Token text -> id; a repeated token is refused, as llama.cpp refuses it, since one of its ids would be lost."""
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in vocab:
            raise GGUFError(f"GGUF tokenizer repeats token {token!r} (ids {vocab[token]} and {index})")
        vocab[token] = index
    return vocab


def added_tokens(tokens: Sequence[str], types: Sequence[int]) -> list[AddedToken]:
    """Tokens matched whole in the text before the model sees it, like llama.cpp's special-token pass: control
    tokens (special, skipped by `skip_special_tokens`) and user-defined ones (plain added tokens, kept when
    decoding). Both are matched in the raw text, as llama.cpp matches them."""
    added = []
    for token, kind in zip(tokens, types, strict=False):
        if kind in (CONTROL, UNKNOWN):
            added.append(AddedToken(token, special=True, normalized=False))
        elif kind == USER_DEFINED:
            added.append(AddedToken(token, special=False, normalized=False))
    return added


def _split_merge(merge: str) -> tuple[str, str]:
    """llama.cpp splits "a b" at the first space after the first character (a merge part may itself be a space)."""
    at = merge.find(" ", 1)
    if at < 0:
        raise GGUFError(f"GGUF tokenizer merge {merge!r} is not two tokens")
    return merge[:at], merge[at + 1 :]


def byte_level_bpe(
    tokens: Sequence[str], types: Sequence[int], merges: Sequence[str], split: ByteLevelSplit
) -> Tokenizer:
    """`tokenizer.ggml.model = "gpt2"`: byte-level BPE with the split of its `tokenizer.ggml.pre`."""
    if not merges:
        raise GGUFError("GGUF byte-level BPE tokenizer has no tokenizer.ggml.merges")
    model = BPE(
        vocab=id_vocab(tokens),
        merges=[_split_merge(m) for m in merges],
        fuse_unk=False,
        byte_fallback=False,
        ignore_merges=split.ignore_merges,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = split.normalizer
    tokenizer.pre_tokenizer = split.pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_tokens(added_tokens(tokens, types))
    return tokenizer


def sentencepiece_merges(tokens: Sequence[str], types: Sequence[int], scores: Sequence[float]) -> list[tuple[str, str]]:
    """The BPE merges a SentencePiece BPE vocabulary implies.

    SentencePiece merges, at each step, the adjacent pair whose joined piece has the highest score (llama.cpp's
    `llm_tokenizer_spm` does the same). A BPE merge list ranked by that score reproduces it. Only normal pieces
    take part: control, byte and unused pieces are never built from parts, and user-defined ones are matched whole
    beforehand. Ties (files whose scores are all equal) fall back to id order, which is SentencePiece's merge order.
    """
    mergeable = {t: i for i, (t, kind) in enumerate(zip(tokens, types, strict=False)) if kind in (NORMAL, UNKNOWN)}
    found: list[tuple[float, int, int, int, str, str]] = []
    for piece, index in mergeable.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in mergeable and right in mergeable:
                found.append((-scores[index], index, mergeable[left], mergeable[right], left, right))
    found.sort()
    return [(left, right) for *_, left, right in found]


def sentencepiece_bpe(
    tokens: Sequence[str],
    types: Sequence[int],
    scores: Sequence[float] | None,
    merges: Sequence[str] | None,
    unk_id: int | None,
    add_space_prefix: bool,
) -> Tokenizer:
    """`tokenizer.ggml.model = "llama"`: SentencePiece BPE with byte fallback, as transformers' Llama/Gemma
    tokenizers hold it: spaces become "▁" in the normalizer (with one "▁" in front of each run of text when the
    file says `add_space_prefix`, as SentencePiece and llama.cpp add it), no pre-tokenizer, and a decoder that
    turns "▁" back into spaces, bytes back into text and drops that first space."""
    # Scores are what llama.cpp merges by; a file whose scores say nothing (all equal, as the converter writes
    # them from a tokenizer.json) but that lists merges (Gemma 4) is taken at its merges.
    known = scores if scores is not None else []
    usable = scores is not None and len(known) >= len(tokens)
    if merges and not (usable and len(set(known[: len(tokens)])) > 1):
        merge_pairs = [_split_merge(m) for m in merges]
    elif usable:
        merge_pairs = sentencepiece_merges(tokens, types, [float(s) for s in known[: len(tokens)]])
    else:
        raise GGUFError("GGUF SentencePiece tokenizer has neither tokenizer.ggml.scores nor tokenizer.ggml.merges")
    unk = tokens[unk_id] if unk_id is not None and 0 <= unk_id < len(tokens) else None
    model = BPE(vocab=id_vocab(tokens), merges=merge_pairs, unk_token=unk, fuse_unk=True, byte_fallback=True)
    tokenizer = Tokenizer(model)
    spaces = normalizers.Replace(" ", SPIECE_SPACE)
    if add_space_prefix:
        tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPIECE_SPACE), spaces])
    else:
        tokenizer.normalizer = spaces
    steps = [decoders.Replace(SPIECE_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_space_prefix:
        steps.append(decoders.Strip(" ", 1, 0))
    tokenizer.decoder = decoders.Sequence(steps)
    # llama.cpp's converter wrote user-defined pieces with real spaces where SentencePiece has "▁"; matched in
    # the raw text, that is the same match.
    plain = [t.replace(SPIECE_SPACE, " ") if k == USER_DEFINED else t for t, k in zip(tokens, types, strict=False)]
    tokenizer.add_tokens(added_tokens(plain, types))
    return tokenizer


def unphantom(tokens: Sequence[str], types: Sequence[int]) -> list[str]:
    """WordPiece tokens as the original vocab.txt had them: "▁word" -> "word", "ing" -> "##ing"."""
    original = []
    for token, kind in zip(tokens, types, strict=False):
        if kind == CONTROL:
            original.append(token)
        elif token.startswith(SPIECE_SPACE):
            original.append(token[1:])
        else:
            original.append("##" + token)
    return original


def wordpiece(
    tokens: Sequence[str], types: Sequence[int], unk_id: int | None, lowercase: bool, strip_accents: bool
) -> Tokenizer:
    """`tokenizer.ggml.model = "bert"`: WordPiece with BERT's normalizer and whitespace/punctuation split."""
    vocab_tokens = unphantom(tokens, types)
    unk = vocab_tokens[unk_id] if unk_id is not None and 0 <= unk_id < len(tokens) else "[UNK]"
    tokenizer = Tokenizer(WordPiece(vocab=id_vocab(vocab_tokens), unk_token=unk, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer.add_tokens(added_tokens(vocab_tokens, types))
    return tokenizer
