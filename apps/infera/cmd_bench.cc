// infera bench: prompt-processing and generation speed of a model on this machine, in the manner
// of llama-bench (pp: one batch of p prompt tokens; tg: n tokens generated one at a time from an
// empty context; random token ids; median and spread of r runs after a warm-up), plus the decode
// bound: weight bytes read per generated token against the memory bandwidth measured here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <map>
#include <memory>
#include <fstream>
#include <random>
#include <string>

#include "base/membw.h"
#include "bench_stats.h"
#include "base/thread_pool.h"
#include "cli_util.h"
#include "commands.h"
#include "formats/json_util.h"
#include "engine/generator.h"
#include "model/kv_store.h"
#include "model/loader.h"

namespace infera::cli {

namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 512, n_gen = 128, threads = 0, reps = 3;
  int concurrency = 0;  // > 0: also C requests at once through the batching engine
  int64_t max_num_batched_tokens = 512;
  std::string kv_cache_dtype = "auto";  // --concurrency: the engine's KV cache type
  std::string isa;
  bool json = false;
};

struct Stats {
  std::vector<double> runs;  // tokens per second
  double median() const {
    std::vector<double> s = runs;
    std::sort(s.begin(), s.end());
    const size_t n = s.size();
    return n == 0 ? 0 : (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2);
  }
  double stdev() const {
    if (runs.size() < 2) return 0;
    double m = 0, v = 0;
    for (double r : runs) m += r;
    m /= static_cast<double>(runs.size());
    for (double r : runs) v += (r - m) * (r - m);
    return std::sqrt(v / static_cast<double>(runs.size() - 1));
  }
};

// What one generated token reads: every weight once, except the embedding table (one row) unless
// it doubles as the output matrix. Also the dtype holding the most bytes, for the model line.
struct WeightBytes {
  uint64_t total = 0, per_token = 0;
  std::string main_type;
};

WeightBytes weight_bytes(const LoadedModel& m) {
  WeightBytes w;
  std::map<std::string, uint64_t> by_type;
  bool has_output = false;
  uint64_t embd = 0;
  auto add = [&](const std::string& name, const TensorView& v) {
    w.total += v.nbytes;
    by_type[std::string(dtype_name(v.type))] += v.nbytes;
    if (name == "token_embd.weight" || name == "model.embed_tokens.weight") {
      embd = v.nbytes;
      w.per_token += static_cast<uint64_t>(v.row_size());
    } else {
      w.per_token += v.nbytes;
    }
    if (name == "output.weight" || name == "lm_head.weight") has_output = true;
  };
  if (m.gguf)
    for (const auto& t : m.gguf->tensors()) add(t.name, t.view);
  if (m.safetensors)
    for (const auto& t : m.safetensors->tensors()) add(t.name, t.view);
  if (!has_output) w.per_token += embd;  // tied: the embedding table is the output matrix
  uint64_t best = 0;
  for (const auto& [type, bytes] : by_type)
    if (bytes > best) best = bytes, w.main_type = type;
  return w;
}

// Linux keeps the peak resident set (VmHWM); writing 5 to clear_refs resets it to the current size.
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}
long peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string key;
  long kb = 0;
  while (f >> key) {
    if (key == "VmHWM:") {
      f >> kb;
      return kb;
    }
    f.ignore(1 << 12, '\n');
  }
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One run of C requests submitted at once to the batching engine, each p random prompt tokens
// and n generated tokens (ignore_eos). Aggregate output tokens/s over the wall time, each
// request's time to first token, and the decode phase alone: tokens/s from the moment every
// request has its first token (all prompts done) to the end, every stream decoding at once
// (llama-batched-bench's S_TG; the first figure mixes in the prompts' prefill).
struct ConcurrencyRun {
  double output_tps = 0, wall_s = 0, decode_tps = 0;
  std::vector<double> ttft_ms;
  int64_t steps = 0, batched_tokens = 0;
};

ConcurrencyRun concurrency_once(Model& model, Backend& backend, const BenchArgs& a, std::mt19937& rng) {
  const ModelConfig& c = model.config();
  GeneratorOptions o;
  o.max_model_len = a.n_prompt + a.n_gen + 1;
  o.max_num_seqs = a.concurrency;
  o.max_num_batched_tokens = a.max_num_batched_tokens;
  o.prefix_caching = false;  // random prompts share nothing; keep the lookups out of the timing
  o.backend = &backend;
  o.kv_type = *parse_kv_cache_dtype(a.kv_cache_dtype);
  o.kv_cache_bytes = KvStore::bytes_per_token(c, o.kv_type) * (a.concurrency * (o.max_model_len + 16) + 16);
  Generator g(model, o);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.n_vocab - 1));
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    int left = 0;
  } done;
  done.left = a.concurrency;
  ConcurrencyRun r;
  r.ttft_ms.assign(static_cast<size_t>(a.concurrency), 0);
  std::vector<std::vector<std::pair<double, size_t>>> arrivals(static_cast<size_t>(a.concurrency));  // (s, tokens)
  for (auto& v : arrivals) v.reserve(static_cast<size_t>(a.n_gen) + 1);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.concurrency; ++i) {
    std::vector<int32_t> ids(static_cast<size_t>(a.n_prompt));
    for (int32_t& t : ids) t = tok(rng);
    GenerationParams p;
    p.max_tokens = a.n_gen;
    p.ignore_eos = true;
    g.submit(std::move(ids), p, [&, i, first = true](const GenEvent& e) mutable {
      const double now = seconds_since(t0);
      if (first) r.ttft_ms[static_cast<size_t>(i)] = now * 1e3, first = false;
      arrivals[static_cast<size_t>(i)].emplace_back(now, e.tokens.size());
      if (e.finished) {
        std::lock_guard<std::mutex> lock(done.mu);
        if (--done.left == 0) done.cv.notify_all();
      }
    });
  }
  std::unique_lock<std::mutex> lock(done.mu);
  done.cv.wait(lock, [&] { return done.left == 0; });
  r.wall_s = seconds_since(t0);
  r.output_tps = static_cast<double>(a.concurrency) * a.n_gen / r.wall_s;
  const double all_started = *std::max_element(r.ttft_ms.begin(), r.ttft_ms.end()) / 1e3;
  size_t later = 0;
  double last = all_started;
  for (const auto& v : arrivals)
    for (const auto& [s, n] : v)
      if (s > all_started) later += n, last = std::max(last, s);
  if (last > all_started) r.decode_tps = static_cast<double>(later) / (last - all_started);
  r.steps = g.stats().steps.load();
  r.batched_tokens = g.stats().batched_tokens.load();
  return r;
}

int run_bench(const BenchArgs& a) {
  if (a.n_prompt < 0 || a.n_gen < 0 || a.reps < 1) return fail("-p and -n must be >= 0 and -r >= 1");
  if (a.concurrency > 0 && (a.n_prompt < 1 || a.n_gen < 1)) return fail("--concurrency needs -p and -n >= 1");
  cpu::Isa isa = cpu::default_isa();
  if (!a.isa.empty()) {
    const auto want = cpu::parse_isa(a.isa);
    if (!want) return fail("--isa must be one of scalar, avx2, avx512, amx");
    if (!cpu::isa_supported(*want)) return fail("this CPU does not support " + a.isa);
    isa = *want;
  }
  const int threads = a.threads > 0 ? a.threads : default_thread_count();
  auto backend = make_cpu_backend(threads, isa);
  const auto load_start = std::chrono::steady_clock::now();
  auto m = load_model(a.model, *backend);
  if (!m) return fail(m.error());
  const double load_s = seconds_since(load_start);
  Model& model = *m->model;
  const ModelConfig& c = model.config();
  const WeightBytes wb = weight_bytes(*m);

  double bw = 0;
  {
    ThreadPool pool(threads);
    bw = measure_read_bandwidth(pool);
  }
  reset_peak_rss();  // the probe's buffer is gone; measure the model's own peak from here

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.n_vocab - 1));
  std::vector<float> logits;
  auto pp_once = [&](int n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& t : ids) t = tok(rng);
    KvCache kv = KvCache::make(c, n);
    const auto t0 = std::chrono::steady_clock::now();
    (void)model.forward(ids, kv, false, logits);
    return n / seconds_since(t0);
  };
  auto tg_once = [&](int n) {
    KvCache kv = KvCache::make(c, n);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      const int32_t id[1] = {tok(rng)};
      (void)model.forward(id, kv, false, logits);
    }
    return n / seconds_since(t0);
  };
  pp_once(16);  // warm-up: faults the weights in, wakes the threads
  tg_once(2);
  Stats pp, tg, conc, conc_decode;
  std::vector<double> ttft;
  const bool plain = a.concurrency == 0;
  for (int r = 0; r < a.reps; ++r) {
    if (plain && a.n_prompt > 0) pp.runs.push_back(pp_once(a.n_prompt));
    if (plain && a.n_gen > 0) tg.runs.push_back(tg_once(a.n_gen));
    if (!plain) {
      const ConcurrencyRun c = concurrency_once(model, *backend, a, rng);
      conc.runs.push_back(c.output_tps);
      conc_decode.runs.push_back(c.decode_tps);
      ttft.insert(ttft.end(), c.ttft_ms.begin(), c.ttft_ms.end());
    }
  }
  const double bound = bw > 0 ? bw / static_cast<double>(wb.per_token) : 0;
  const double peak_rss_gb = static_cast<double>(peak_rss_kb()) * 1024.0 / 1e9;

  if (a.json) {
    Json j = {{"model", a.model},
              {"arch", c.arch},
              {"type", wb.main_type},
              {"file_bytes", wb.total},
              {"weight_bytes_per_token", wb.per_token},
              {"backend", std::string(backend->name())},
              {"cpu_features", cpu::feature_string()},
              {"threads", threads},
              {"load_seconds", load_s},
              {"read_bandwidth_gbps", bw / 1e9},
              {"decode_bound_tps", bound},
              {"peak_rss_gb", peak_rss_gb}};
    if (!plain)
      j["concurrency"] = {{"c", a.concurrency},
                          {"n_prompt", a.n_prompt},
                          {"n_gen", a.n_gen},
                          {"max_num_batched_tokens", a.max_num_batched_tokens},
                          {"output_tps_median", conc.median()},
                          {"output_tps_stdev", conc.stdev()},
                          {"runs", conc.runs},
                          {"per_stream_tps", conc.median() / a.concurrency},
                          {"decode_tps_median", conc_decode.median()},
                          {"decode_runs", conc_decode.runs},
                          {"ttft_ms_p50", bench::percentile(ttft, 50)},
                          {"ttft_ms_p99", bench::percentile(ttft, 99)}};
    if (plain && a.n_prompt > 0)
      j["pp"] = {{"n", a.n_prompt}, {"tps_median", pp.median()}, {"tps_stdev", pp.stdev()}, {"runs", pp.runs}};
    if (plain && a.n_gen > 0)
      j["tg"] = {{"n", a.n_gen},
                 {"tps_median", tg.median()},
                 {"tps_stdev", tg.stdev()},
                 {"runs", tg.runs},
                 {"fraction_of_bound", bound > 0 ? tg.median() / bound : 0}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model    %s (%s, %s, %.2f GB, loaded in %.2f s)\n", a.model.c_str(), c.arch.c_str(), wb.main_type.c_str(),
              static_cast<double>(wb.total) / 1e9, load_s);
  std::printf("backend  %s, %d threads (cpu: %s)\n", std::string(backend->name()).c_str(), threads,
              cpu::feature_string().c_str());
  std::printf("memory   %.1f GB/s read with %d threads; %.1f MB of weights per generated token -> decode bound %.2f t/s\n",
              bw / 1e9, threads, static_cast<double>(wb.per_token) / 1e6, bound);
  std::printf("peak RSS %.2f GB (file %.2f GB)\n", peak_rss_gb, static_cast<double>(wb.total) / 1e9);
  std::printf("\n| test | t/s | stdev | runs |\n|---|---:|---:|---|\n");
  auto row = [](const std::string& name, const Stats& s) {
    std::string runs;
    for (double r : s.runs) runs += fmt::format("{}{:.2f}", runs.empty() ? "" : " ", r);
    std::printf("| %s | %.2f | %.2f | %s |\n", name.c_str(), s.median(), s.stdev(), runs.c_str());
  };
  if (plain && a.n_prompt > 0) row("pp" + std::to_string(a.n_prompt), pp);
  if (plain && a.n_gen > 0) row("tg" + std::to_string(a.n_gen), tg);
  if (!plain) {
    row(fmt::format("c{} pp{}+tg{} (output t/s, all streams)", a.concurrency, a.n_prompt, a.n_gen), conc);
    row(fmt::format("c{} decode phase (t/s, all streams, once every prompt is in)", a.concurrency), conc_decode);
    std::printf("\nper stream %.2f t/s; time to first token p50 %.0f ms, p99 %.0f ms\n", conc.median() / a.concurrency,
                bench::percentile(ttft, 50), bench::percentile(ttft, 99));
  }
  if (plain && a.n_gen > 0 && bound > 0) std::printf("\ntg%d = %.0f%% of the decode bound\n", a.n_gen, 100 * tg.median() / bound);
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Measure prompt and generation speed (like llama-bench)");
  c->add_option("-m,--model", a->model, "GGUF file or Hugging Face model folder")->required();
  c->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens per pp run (0: skip)")->capture_default_str();
  c->add_option("-n,--n-gen", a->n_gen, "tokens generated per tg run (0: skip)")->capture_default_str();
  c->add_option("-t,--threads", a->threads, "worker threads (default: physical cores)");
  c->add_option("-r,--repetitions", a->reps, "runs of each test")->capture_default_str();
  c->add_option("--isa", a->isa, "force a kernel set: scalar | avx2 | avx512 | amx (default: the best this CPU has)");
  c->add_option("-c,--concurrency", a->concurrency,
                 "instead of pp/tg: C requests of -p prompt and -n generated tokens at once through the batching engine")
      ->check(CLI::Range(0, 4096));
  c->add_option("--max-num-batched-tokens", a->max_num_batched_tokens, "token budget of one engine step (--concurrency)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  c->add_option("--kv-cache-dtype", a->kv_cache_dtype, "KV cache of the batching engine (--concurrency): auto (f32), f16 or q8_0")
      ->capture_default_str()
      ->check([](const std::string& v) { return parse_kv_cache_dtype(v) ? std::string() : "expected auto, f32, f16 or q8_0"; });
  c->add_flag("--json", a->json, "print one JSON object");
  c->callback([a, exit_code] { *exit_code = run_bench(*a); });
}

}  // namespace infera::cli
