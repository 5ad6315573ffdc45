#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, write a random-weight
# DeepSeek-R1-Distill-Qwen-shaped model with the real R1 vocabulary, generate from it, then serve it
# on the OpenAI-compatible endpoint and send the tutorial's request with curl.
# (The platform, with the DeepSeek-R1 template deployed behind an endpoint, replaces this
# once it exists.) INFERA_KEEP_SERVING=1 leaves the server running in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
mkdir -p out
bin=build/release/bin/infera
preset=${INFERA_PRESET:-tiny}
model=out/r1-qwen-${preset}-q8_0.gguf
if [ ! -f "$model" ]; then
  tok=tests/fixtures/tokenizers/deepseek-r1-distill-qwen/tokenizer.json
  [ "$preset" = tiny ] && tok=tests/fixtures/models/tiny-qwen2-hf/tokenizer.json
  "$bin" make-model --arch qwen2 --preset "$preset" --dtype q8_0 --tokenizer "$tok" --out "$model"
fi
"$bin" inspect "$model" > out/inspect.txt && head -n 30 out/inspect.txt
# The tutorial's health-check message, rendered with the model's own chat template (the R1 one),
# tokenized, and answered. The weights are random, so the text is too; the pipeline is the real one.
"$bin" chat-template --model "$model" --add-generation-prompt \
  --messages-json <(echo '[{"role":"user","content":"Respond with a single word: Ready"}]'); echo
"$bin" run --model "$model" --chat "Respond with a single word: Ready" -n 32 --temp 0.6 --top-p 0.95 --seed 1

# The tutorial's request against `infera serve` (port 9000, as the DeepSeek-R1 template uses).
port=${INFERA_PORT:-9000}
"$bin" serve --model "$model" --served-model-name DeepSeek-R1-Distill-Qwen-1.5B --port "$port" --host 127.0.0.1 \
  --max-model-len 8192 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
curl -s "http://127.0.0.1:$port/v1/chat/completions" -H "Content-Type: application/json" -d '{
  "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Give me a short fun fact about the roman empire"}
  ],
  "max_tokens": 4000,
  "temperature": 0.7
}'
echo
if [ "${INFERA_KEEP_SERVING:-0}" = 1 ]; then
  echo "serving on http://127.0.0.1:$port/v1 (Ctrl-C to stop)"
  wait "$server"
fi
