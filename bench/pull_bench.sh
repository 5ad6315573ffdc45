#!/usr/bin/env bash
# The "2 GB file lands at >= 90% of the disk's write speed" measurement (docs/performance.md):
# a 2 GiB random file served by tests/hub/fake_hub.js on loopback, pulled into an empty cache on
# the same disk as the reference write (dd ... conv=fdatasync; the pull also fdatasyncs before
# the blob becomes visible), three runs each. Everything lives under one temp dir, removed at exit.
#
# Usage: [RUNS=3] bash bench/pull_bench.sh build/release/bin/infera [size_mib (2048)] [connections (4)]
set -euo pipefail
BIN=$(realpath "$1")
MIB=${2:-2048}
CONN=${3:-4}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/infera-pull-bench.XXXXXX")
HUB_PID=
cleanup() { [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/repo"
head -c $((MIB << 20)) /dev/urandom > "$WORK/repo/model.safetensors"
echo '{"architectures": ["Qwen2ForCausalLM"]}' > "$WORK/repo/config.json"
cat "$WORK/repo/model.safetensors" > /dev/null   # the source in the page cache: the server is not the bottleneck

dd_rate() {  # MB/s of a fdatasync'ed write of the same bytes on the target disk
  local t0 t1
  t0=$(date +%s.%N)
  dd if="$WORK/repo/model.safetensors" of="$WORK/dd.out" bs=16M conv=fdatasync status=none
  t1=$(date +%s.%N)
  rm -f "$WORK/dd.out"
  echo "scale=1; $MIB * 1.048576 / ($t1 - $t0)" | bc
}

node "$HERE/tests/hub/fake_hub.js" --port 0 --repo bench/model="$WORK/repo" > "$WORK/hub.url" &
HUB_PID=$!
for _ in $(seq 1 600); do [ -s "$WORK/hub.url" ] && break; sleep 0.1; done
URL=$(cat "$WORK/hub.url")

for i in $(seq 1 "${RUNS:-3}"); do
  d=$(dd_rate)
  rm -rf "$WORK/cache"
  t0=$(date +%s.%N)
  HF_ENDPOINT=$URL HF_HUB_CACHE="$WORK/cache" "$BIN" pull bench/model --connections "$CONN" --quiet > /dev/null
  t1=$(date +%s.%N)
  p=$(echo "scale=1; $MIB * 1.048576 / ($t1 - $t0)" | bc)
  echo "run $i: disk write (dd conv=fdatasync) $d MB/s, pull $p MB/s, ratio $(echo "scale=2; $p / $d" | bc)"
done
