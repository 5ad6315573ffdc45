// llama.cpp on the same model file, through node-llama-cpp (its prebuilt CPU build), measured the
// way `infera bench` measures: pp = one batch of P random prompt tokens, tg = N tokens generated one
// at a time after a 1-token start, median of R runs after a warm-up. Prints one JSON object.
//
//   npm install --prefix /tmp/nlc node-llama-cpp@3.21.1
//   NODE_PATH=/tmp/nlc/node_modules node bench/llama_cpp_bench.mjs MODEL.gguf [P N R THREADS]
// bench/cpu_side_by_side.sh runs it alternately with `infera bench` and prints the ratios.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH || "/tmp/nlc/node_modules", "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const [modelPath, P = "512", N = "128", R = "3", T = "2"] = process.argv.slice(2);
const p = Number(P), n = Number(N), reps = Number(R), threads = Number(T);
const llama = await getLlama({ gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: Math.max(p, n) + 16, batchSize: Math.max(p, 1),
                                             threads: { ideal: threads, min: threads } });
const seq = context.getSequence();
// Prompt tokens: a long text tokenized by the model, cut to length (any ids the model accepts).
const words = "the quick brown fox jumps over a lazy dog while seven wizards quietly box jugs of liquid ".repeat(200);
const pool = model.tokenize(words);
const tokens = (k) => Array.from({ length: k }, (_, i) => pool[i % pool.length]);

async function pp(k) {
  await seq.clearHistory();
  const t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(tokens(k));
  return k / (Number(process.hrtime.bigint() - t0) / 1e9);
}
async function tg(k) {
  await seq.clearHistory();
  let got = 0;
  const t0 = process.hrtime.bigint();
  for await (const _ of seq.evaluate(tokens(1), { temperature: 0 })) if (++got >= k) break;
  return k / (Number(process.hrtime.bigint() - t0) / 1e9);
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

await pp(16); await tg(2);  // warm-up
const ppRuns = [], tgRuns = [];
for (let r = 0; r < reps; ++r) {
  if (p > 0) ppRuns.push(await pp(p));
  if (n > 0) tgRuns.push(await tg(n));
}
console.log(JSON.stringify({ engine: "llama.cpp (node-llama-cpp 3.21.1)", model: modelPath, threads,
  pp: { n: p, tps_median: median(ppRuns), runs: ppRuns }, tg: { n, tps_median: median(tgRuns), runs: tgRuns } }));
await context.dispose(); await model.dispose(); await llama.dispose();
