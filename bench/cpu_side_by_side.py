#!/usr/bin/env python3
"""infera against llama.cpp on the same GGUF files, same threads, alternating runs in one session.

    python3 bench/cpu_side_by_side.py [--threads 2] [--pp 512] [--tg 128] [--reps 3] [--rounds 2] MODEL.gguf...

Needs build/release/bin/infera and either node-llama-cpp's prebuilt llama.cpp (npm install --prefix
/tmp/nlc node-llama-cpp@3.21.1; NODE_PATH points at its node_modules; bench/llama_cpp_bench.mjs drives
it) or, with --llama-bench PATH, a native llama-bench (bench/build_llama_server.sh builds one with
-DGGML_NATIVE=ON, as the baseline's). Each round runs `infera bench --json` and then llama.cpp;
the table gives the median of every run of each engine and the ratio.
The machines we measure on are shared, so only ratios from one session mean much.
"""
import argparse, json, os, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
ap = argparse.ArgumentParser()
ap.add_argument("models", nargs="+")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--pp", type=int, default=512)
ap.add_argument("--tg", type=int, default=128)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--infera", default=os.path.join(root, "build/release/bin/infera"))
ap.add_argument("--llama-bench", default=None)
a = ap.parse_args()
env = dict(os.environ, NODE_PATH=os.environ.get("NODE_PATH", "/tmp/nlc/node_modules"))

print("| model | engine | pp%d t/s | tg%d t/s | decode bound t/s | tg / bound |" % (a.pp, a.tg))
print("|---|---|---:|---:|---:|---:|")
for m in a.models:
    runs = {"infera": {"pp": [], "tg": []}, "llama.cpp": {"pp": [], "tg": []}}
    bounds = []
    for _ in range(a.rounds):
        out = subprocess.run([a.infera, "bench", "-m", m, "-p", str(a.pp), "-n", str(a.tg), "-r", str(a.reps),
                              "-t", str(a.threads), "--json"], check=True, capture_output=True, text=True).stdout
        j = json.loads(out)
        runs["infera"]["pp"] += j.get("pp", {}).get("runs", [])
        runs["infera"]["tg"] += j.get("tg", {}).get("runs", [])
        bounds.append(j["decode_bound_tps"])
        if a.llama_bench:
            out = subprocess.run([a.llama_bench, "-m", m, "-p", str(a.pp), "-n", str(a.tg), "-r", str(a.reps), "-t",
                                  str(a.threads), "-o", "json"], check=True, capture_output=True, text=True).stdout
            for r in json.loads(out):
                runs["llama.cpp"]["pp" if r["n_gen"] == 0 else "tg"] += r["samples_ts"]
        else:
            out = subprocess.run(["node", os.path.join(here, "llama_cpp_bench.mjs"), m, str(a.pp), str(a.tg),
                                  str(a.reps), str(a.threads)], check=True, capture_output=True, text=True, env=env).stdout
            j = json.loads(out.strip().splitlines()[-1])
            runs["llama.cpp"]["pp"] += j["pp"]["runs"]
            runs["llama.cpp"]["tg"] += j["tg"]["runs"]
    bound = max(bounds)
    med = {e: {k: statistics.median(v) if v else 0 for k, v in r.items()} for e, r in runs.items()}
    for e in ("infera", "llama.cpp"):
        print("| %s | %s | %.1f | %.2f | %.1f | %.0f%% |" % (os.path.basename(m), e, med[e]["pp"], med[e]["tg"], bound,
                                                           100 * med[e]["tg"] / bound))
    print("| %s | **ratio** | **%.2f** | **%.2f** | | |" % (
        os.path.basename(m), med["infera"]["pp"] / max(med["llama.cpp"]["pp"], 1e-9),
        med["infera"]["tg"] / max(med["llama.cpp"]["tg"], 1e-9)))
    sys.stdout.flush()
