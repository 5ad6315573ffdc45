#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, write a random-weight
# DeepSeek-R1-Distill-Qwen-shaped model with the real R1 vocabulary, and generate from it.
# (The platform, with the DeepSeek-R1 template deployed behind an endpoint, replaces this
# once it exists.)
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
