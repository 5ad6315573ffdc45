#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for N seconds (default 60),
# seeded from the test fixtures. CI runs it briefly; run it longer by hand, e.g. `fuzz.sh 3600`.
# A crash leaves its input as crash-* in the working folder and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cmake --preset fuzz > /dev/null
cmake --build --preset fuzz -j "$(nproc)" --target fuzz_gguf fuzz_tokenizer_json fuzz_encode fuzz_chat_template fuzz_regex fuzz_json_schema
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gguf" "$work/tokenizer_json" "$work/encode" "$work/chat_template" "$work/regex" "$work/json_schema"
cp tests/fixtures/models/tiny-qwen2-q4_0.gguf tests/fixtures/models/tiny-llama-q8_0.gguf "$work/gguf/"
cp tests/fixtures/models/tiny-qwen2-hf/tokenizer.json "$work/tokenizer_json/"
python3 - "$work/encode" <<'PY'
import json, sys
for i, line in enumerate(open("tests/fixtures/tokenizers/cases-qwen.jsonl", encoding="utf-8")):
    open(f"{sys.argv[1]}/case{i}", "w", encoding="utf-8").write(json.loads(line)["text"])
PY
cp tests/fixtures/chat-templates/*.jinja "$work/chat_template/"
python3 - "$work" <<'PY'
import json, sys
regexes = [r"\d{3}-[a-z]+", r"(?:yes|no)", r"[^\W\d]{2,5}\s?\u00e9", r"(a|b)*a(a|b){3}", r"^(?P<y>\d{4})-(?:0[1-9]|1[0-2])$", r".{0,20}x"]
schemas = [{"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}}, "required": ["name"]},
           {"$defs": {"p": {"type": "object", "properties": {"x": {"type": "number", "minimum": -2}}}}, "anyOf": [{"$ref": "#/$defs/p"}, {"type": "null"}]},
           {"type": "array", "prefixItems": [{"const": 1}, {"type": "string", "format": "date-time"}], "items": False},
           {"type": "string", "pattern": "^[A-Z]{2}\\d+$"}, {}]
for i, r in enumerate(regexes): open(f"{sys.argv[1]}/regex/r{i}", "w", encoding="utf-8").write(r)
for i, s in enumerate(schemas): open(f"{sys.argv[1]}/json_schema/s{i}", "w", encoding="utf-8").write(json.dumps(s))
PY
for target in gguf tokenizer_json encode chat_template regex json_schema; do
  bin=build/fuzz/fuzz/fuzz_$target
  [ -x "$bin" ] || continue
  echo "== fuzz_$target for ${seconds}s"
  rc=0
  "$bin" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 "$work/$target" \
    > "$work/$target.log" 2>&1 || rc=$?
  grep -E "^(Done|stat::number_of_executed_units)" "$work/$target.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$work/$target.log"
    echo "fuzz_$target found a failure (exit $rc)"
    exit 1
  fi
done
