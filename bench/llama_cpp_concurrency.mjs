// llama.cpp serving C concurrent streams on one model file, through node-llama-cpp (its prebuilt
// CPU build): one context with C sequences, each fed I prompt tokens then generating O tokens
// (greedy, no EOS stop), all at once. node-llama-cpp batches the sequences' tokens into shared
// llama_decode calls, as llama-server does with -np C. Measured like `infera bench --concurrency`:
// aggregate output tokens/s over the wall time, and each stream's time to first token.
//
//   npm install --prefix /tmp/nlc node-llama-cpp@3.21.1
//   NODE_PATH=/tmp/nlc/node_modules node bench/llama_cpp_concurrency.mjs MODEL.gguf [C I O R THREADS]
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH || "/tmp/nlc/node_modules", "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const [modelPath, C = "8", I = "32", O = "64", R = "1", T = "2"] = process.argv.slice(2);
const c = Number(C), inLen = Number(I), outLen = Number(O), reps = Number(R), threads = Number(T);
const llama = await getLlama({ gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: c * (inLen + outLen + 16), sequences: c,
                                             batchSize: 512, threads: { ideal: threads, min: threads } });
const seqs = Array.from({ length: c }, () => context.getSequence());
const words = "the quick brown fox jumps over a lazy dog while seven wizards quietly box jugs of liquid ".repeat(200);
const pool = model.tokenize(words);
const prompt = (k, off) => Array.from({ length: k }, (_, i) => pool[(i + off) % pool.length]);

async function stream(seq, i, t0, ttft) {
  await seq.clearHistory();
  let got = 0;
  for await (const _ of seq.evaluate(prompt(inLen, 7 * i), { temperature: 0 })) {
    if (got === 0) ttft[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    if (++got >= outLen) break;
  }
  return got;
}
async function once() {
  const ttft = new Array(c).fill(0);
  const t0 = process.hrtime.bigint();
  const counts = await Promise.all(seqs.map((s, i) => stream(s, i, t0, ttft)));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { tps: counts.reduce((a, b) => a + b, 0) / wall, wall, ttft };
}
const pct = (a, q) => { const s = [...a].sort((x, y) => x - y); const p = q / 100 * (s.length - 1); const lo = Math.floor(p);
  const hi = Math.min(lo + 1, s.length - 1); return s[lo] + (s[hi] - s[lo]) * (p - lo); };

await stream(seqs[0], 0, process.hrtime.bigint(), []);  // warm-up
const runs = [], ttfts = [];
for (let r = 0; r < reps; ++r) { const x = await once(); runs.push(x.tps); ttfts.push(...x.ttft); }
console.log(JSON.stringify({ engine: "llama.cpp (node-llama-cpp 3.21.1)", model: modelPath, threads, concurrency: c,
  input_len: inLen, output_len: outLen, output_tps_median: pct(runs, 50), runs, per_stream_tps: pct(runs, 50) / c,
  ttft_ms_p50: pct(ttfts, 50), ttft_ms_p99: pct(ttfts, 99) }));
await context.dispose(); await model.dispose(); await llama.dispose();
