#!/usr/bin/env python3
"""infera serve against llama-server over HTTP on the same GGUF file, in alternating rounds.

    python3 bench/serve_side_by_side.py --llama-server /tmp/llama.cpp/build/bin/llama-server \
        [--concurrency 1 8] [--requests-per-stream 2] [--input-len 32] [--output-len 128] \
        [--endpoint completions|chat] [--rounds 2] [--threads 2] [--llama-server-args "..."] MODEL.gguf

Each round starts one server, drives it with `infera bench-serve --json` at every concurrency
(a new prompt seed per run), stops it, then does the same with the other; the order flips every
round. Servers as in the baseline: llama-server -np 8 -c 8192 -t T; infera serve --threads T
--max-num-seqs 8 --max-model-len 4096. The table gives medians over the rounds and the ratio.
(bench/build_llama_server.sh builds the llama-server.)
"""
import argparse, json, os, signal, statistics, subprocess, sys, time, urllib.request

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--llama-server", required=True)
ap.add_argument("--infera", default=os.path.join(root, "build/release/bin/infera"))
ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
ap.add_argument("--requests-per-stream", type=int, default=2)
ap.add_argument("--input-len", type=int, default=32)
ap.add_argument("--output-len", type=int, default=128)
ap.add_argument("--endpoint", default="completions")
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--port", type=int, default=8131)
ap.add_argument("--llama-server-args", default="", help="extra llama-server arguments, one string (e.g. \"--no-repack\")")
a = ap.parse_args()

servers = {
    "infera": [a.infera, "serve", "--model", a.model, "--port", str(a.port), "--threads", str(a.threads),
               "--max-num-seqs", "8", "--max-model-len", "4096"],
    "llama-server": [a.llama_server, "-m", a.model, "--port", str(a.port), "-np", "8", "-c", "8192", "-t",
                     str(a.threads)] + a.llama_server_args.split(),
}


def wait_ready(url, proc):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit("server exited: %s" % proc.returncode)
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    sys.exit("server did not become ready")


runs = {e: {c: [] for c in a.concurrency} for e in servers}
seed = 1
for rnd in range(a.rounds):
    order = list(servers) if rnd % 2 == 0 else list(reversed(list(servers)))
    for engine in order:
        log = open("/tmp/serve_side_by_side.%s.log" % engine, "w")
        proc = subprocess.Popen(servers[engine], stdout=log, stderr=subprocess.STDOUT)
        url = "http://127.0.0.1:%d" % a.port
        try:
            wait_ready(url, proc)
            for c in a.concurrency:
                seed += 1
                out = subprocess.run([a.infera, "bench-serve", "--url", url, "--endpoint", a.endpoint,
                                      "--concurrency", str(c), "--requests", str(c * a.requests_per_stream),
                                      "--input-len", str(a.input_len), "--output-len", str(a.output_len),
                                      "--seed", str(seed), "--json"], check=True, capture_output=True, text=True)
                j = json.loads(out.stdout)
                if j.get("failed", 0):
                    sys.exit("%s: %d requests failed: %s" % (engine, j["failed"], j.get("first_error")))
                runs[engine][c].append(j)
                print("round %d %s c%d: %.1f tok/s, TTFT p99 %.0f ms" % (
                    rnd + 1, engine, c, j["output_throughput"], j["p99_ttft_ms"]), file=sys.stderr)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def med(js, f):
    return statistics.median(f(j) for j in js)


print("| streams | engine | output tok/s | per-stream tok/s (mean) | TTFT p50 / p99 ms | ITL p50 / p99 ms |")
print("|---:|---|---:|---:|---:|---:|")
for c in a.concurrency:
    for e in servers:
        js = runs[e][c]
        print("| %d | %s | %.1f | %.1f | %.0f / %.0f | %.0f / %.0f |" % (
            c, e, med(js, lambda j: j["output_throughput"]), med(js, lambda j: j["per_stream_output_throughput"]),
            med(js, lambda j: j["median_ttft_ms"]), med(js, lambda j: j["p99_ttft_ms"]),
            med(js, lambda j: j["median_itl_ms"]), med(js, lambda j: j["p99_itl_ms"])))
    ratio = med(runs["infera"][c], lambda j: j["output_throughput"]) / med(runs["llama-server"][c],
                                                                          lambda j: j["output_throughput"])
    print("| %d | **ratio** | **%.2f** | | | |" % (c, ratio))
