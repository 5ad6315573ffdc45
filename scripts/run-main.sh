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
"$bin" inspect "$model" | head -n 30
# Prompt as token ids (text prompts arrive with the tokenizer). Full R1 vocabulary: the tutorial's
# health check, BOS <｜User｜> "Respond with a single word: Ready" <｜Assistant｜> <think> "\n".
# Tiny vocabulary: BOS <｜User｜>, five regular tokens, <｜Assistant｜> <think> "\n".
if [ "$preset" = tiny ]; then ids="1027 1025 49 82 320 263 350 1026 1029 198"; else
  ids="151646 151644 65354 448 264 3175 3409 25 30982 151645 151648 198"; fi
"$bin" run --model "$model" --token-ids "$ids" -n 32 --temp 0.6 --top-p 0.95 --seed 1
