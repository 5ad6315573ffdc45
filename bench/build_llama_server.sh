#!/usr/bin/env bash
# Builds llama.cpp's llama-server and llama-bench (CPU, Release, -DGGML_NATIVE=ON, as the baseline in
# docs/performance.md) from the llama.cpp source release that the npm package node-llama-cpp ships
# as a git bundle: the one way to a llama-server here, where only apt and npm are reachable.
#
# One harness change, for random-weight models only: llama-server parses every streamed chunk
# with its chat-output parser, which throws on the invalid UTF-8 that random tokens produce and
# ends the stream with an error; the build catches that exception and keeps the raw text (real
# models' output is valid UTF-8 and never takes that path). The parse itself still runs.
#
# Usage: bash bench/build_llama_server.sh [DIR (/tmp/llama.cpp)]
#   then DIR/build/bin/llama-server and DIR/build/bin/llama-bench; ~15 min on 2 cores.
set -euo pipefail
DIR=${1:-/tmp/llama.cpp}
NLC=${NLC:-/tmp/nlc}
if [ ! -f "$NLC/node_modules/node-llama-cpp/llama/gitRelease.bundle" ]; then
  npm install --prefix "$NLC" node-llama-cpp@3.21.1
fi
if [ ! -d "$DIR/.git" ]; then
  git clone -q "$NLC/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$DIR"
fi
python3 - "$DIR/tools/server/server-task.cpp" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
call = "    auto new_msg = common_chat_parse(\n        generated_text,\n        is_partial,\n        chat_parser_params);"
if "bench harness" not in s:
    if call not in s:
        sys.exit("server-task.cpp: the chat-parse call to guard was not found; adjust build_llama_server.sh")
    s = s.replace(call, "    common_chat_msg new_msg;\n    try {  // bench harness: random-weight output fails the parser\n"
                  "        new_msg = common_chat_parse(generated_text, is_partial, chat_parser_params);\n"
                  "    } catch (const std::exception &) {\n        new_msg.role = \"assistant\";\n"
                  "        new_msg.content = generated_text;\n    }")
    open(p, "w").write(s)
PY
cmake -S "$DIR" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$DIR/build" -j "$(nproc)" --target llama-server llama-bench > /dev/null
"$DIR/build/bin/llama-server" --version
