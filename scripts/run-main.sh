#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, start the platform with its local
# node, deploy the DeepSeek-R1 template (SIMPLE, 1 replica, 60 min) on the local-cpu market, wait
# until its endpoint is ready, print the endpoint URL and send the tutorial's curl through it.
#
#   bash scripts/run-main.sh [--model PATH]
#
# The model behind the template's deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B is, in order: PATH
# (a GGUF file or Hugging Face folder of the real model), the Hugging Face cache when it holds the
# model, else a generated demo model with RANDOM weights (said plainly: it answers random text).
# INFERA_KEEP_SERVING=1 keeps the platform running in the foreground afterwards (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
model_path=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model_path="$2"; shift 2 ;;
    *) echo "usage: $0 [--model PATH]" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
bin=$PWD/build/release/bin/infera
data=$PWD/out/platform
models=$data/models
repo=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
port=${INFERA_PORT:-8080}
mkdir -p "$models"

hf_cache=${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}
if [ -n "$model_path" ]; then
  "$bin" model import "$model_path" --as "$repo" --models-dir "$models"
elif [ -f "$hf_cache/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-1.5B/refs/main" ]; then
  rm -rf "${models:?}/$repo"
  echo "run-main: using $repo from the Hugging Face cache ($hf_cache)"
elif [ ! -e "$models/$repo" ] || [ -f "$models/$repo/INFERA_DEMO_RANDOM_WEIGHTS" ]; then
  demo=$PWD/out/demo-r1-qwen-tiny-q8_0.gguf
  if [ ! -f "$demo" ]; then
    "$bin" make-model --arch qwen2 --preset tiny --dtype q8_0 \
      --tokenizer tests/fixtures/models/tiny-qwen2-hf/tokenizer.json --out "$demo"
  fi
  "$bin" model import "$demo" --as "$repo" --models-dir "$models" --demo
  echo "run-main: NOTE: no real weights here (no --model PATH, nothing in the Hugging Face cache), so the"
  echo "run-main: deployment serves a generated demo model with RANDOM weights: its answers are random text."
fi

# A fixed admin key for this data dir (the platform prints a fresh one only on its first start).
[ -f "$data/admin-key" ] || echo "inf_$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)" > "$data/admin-key"
export INFERA_ADMIN_KEY=$(cat "$data/admin-key") INFERA_API_KEY=$(cat "$data/admin-key")
export INFERA_PLATFORM_URL=http://127.0.0.1:$port

"$bin" platform --port "$port" --data-dir "$data" --models-dir "$models" > "$data/platform.log" 2>&1 &
platform=$!
trap 'kill $platform 2>/dev/null || true; wait $platform 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$INFERA_PLATFORM_URL/health" >/dev/null && break; sleep 0.1; done

# The tutorial: DeepSeek-R1 template, local-cpu market, SIMPLE, 1 replica, 60 minutes; it starts itself.
"$bin" deploy create --template deepseek-r1-qwen-1-5b --market local-cpu --strategy SIMPLE --replicas 1 \
  --timeout 60m --wait-ready --json > "$data/deployment.json"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$data/deployment.json")
url=$("$bin" deploy endpoint "$id")
echo
echo "deployment $id is ready; its logs:"
"$bin" deploy logs "$id" | cut -c1-200
echo
echo "Endpoint URL: $url"
echo "curl ${url}v1/chat/completions -H 'Content-Type: application/json' -d '{...the tutorial request...}'"
echo
curl -s "${url}v1/chat/completions" -H "Content-Type: application/json" -d '{
  "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Give me a short fun fact about the roman empire"}
  ],
  "max_tokens": 4000,
  "temperature": 0.7
}'
echo
echo
echo "platform API: $INFERA_PLATFORM_URL/api (admin key in $data/admin-key); CLI: $bin deploy list"
if [ "${INFERA_KEEP_SERVING:-0}" = 1 ]; then
  echo "serving; Ctrl-C stops the deployment's replica and the platform"
  wait $platform
else
  "$bin" deploy stop "$id" > /dev/null
  sleep 2
  "$bin" deploy get "$id" | head -3
fi
