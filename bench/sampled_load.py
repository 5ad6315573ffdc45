#!/usr/bin/env python3
"""Aggregate output tokens/s of sampled requests (R1's defaults: temperature 0.6, top_p 0.95, a
seed per request) against any OpenAI-compatible server: C client threads, each sending R
/v1/completions requests of N tokens with ignore_eos, back to back.

Usage: python3 bench/sampled_load.py URL CONCURRENCY TOKENS [REQUESTS_PER_STREAM=2]
"""
import json
import sys
import threading
import time
import urllib.request


def main():
    url, conc, n_tok = sys.argv[1].rstrip("/"), int(sys.argv[2]), int(sys.argv[3])
    per_stream = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    tokens = [0] * conc

    def worker(k):
        for r in range(per_stream):
            body = json.dumps({"prompt": f"Tell me a story number {k * 10 + r}", "max_tokens": n_tok, "ignore_eos": True,
                               "temperature": 0.6, "top_p": 0.95, "seed": k * 10 + r}).encode()
            req = urllib.request.Request(url + "/v1/completions", data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                tokens[k] += json.load(resp)["usage"]["completion_tokens"]

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    print(f"c{conc}: {sum(tokens)} tokens in {dt:.1f} s = {sum(tokens) / dt:.1f} tok/s")


if __name__ == "__main__":
    main()
