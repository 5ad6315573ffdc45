// The batching engine on fixture models: requests batched together, chunked, preempted and
// resumed, or served from the prefix cache give the same greedy tokens as each run alone, with
// log-probs within floating-point tolerance; aborts under load return every KV block.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <random>
#include <thread>

#include "backend/backend.h"
#include "engine/generator.h"
#include "model/loader.h"
#include "unit/test_util.h"

namespace infera {
namespace {

// Collects one job's events.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<TokenLogprob> prompt_logprobs;
  bool finished = false;
  std::string reason, error;

  std::function<void(const GenEvent&)> sink() {
    return [this](const GenEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      tokens.insert(tokens.end(), e.tokens.begin(), e.tokens.end());
      for (const auto& lp : e.logprobs) logprobs.push_back(lp.logprob);
      prompt_logprobs.insert(prompt_logprobs.end(), e.prompt_logprobs.begin(), e.prompt_logprobs.end());
      if (e.finished) finished = true, reason = e.finish_reason, error = e.error;
      cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return finished; })) << "request hung";
  }
  void wait_tokens(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished || tokens.size() >= n; });
  }
};

// The engine publishes its counters after each step: waits until it has gone idle.
void wait_idle(const Generator& g) {
  for (int i = 0; i < 1000 && (g.running() > 0 || g.stats().running.load() + g.stats().waiting.load() > 0 ||
                               g.stats().kv_usage.load() > 0);
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

GenerationParams greedy(int64_t max_tokens) {
  GenerationParams p;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  p.logprobs = 2;  // the chosen token's log-prob: compares logits through the whole batch path
  return p;
}

std::vector<int32_t> random_prompt(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (auto& t : p) t = static_cast<int32_t>(g() % static_cast<uint32_t>(vocab));
  return p;
}

struct Fixture {
  std::unique_ptr<Backend> be = make_cpu_backend(2);
  Result<LoadedModel> m;
  explicit Fixture(const std::string& file) : m(load_model(test::fixture("models/" + file), *be)) {}
  Model& model() { return *m->model; }
};

GeneratorOptions options(int64_t max_model_len = 256) {
  GeneratorOptions o;
  o.max_model_len = max_model_len;
  o.kv_cache_bytes = int64_t{64} << 20;
  return o;
}

// One request alone on a fresh engine (no prefix cache to hit).
Collector* run_alone(Model& model, const GeneratorOptions& o, const std::vector<int32_t>& prompt, int64_t n,
                     std::vector<std::unique_ptr<Collector>>& keep) {
  keep.push_back(std::make_unique<Collector>());
  Generator g(model, o);
  g.submit(prompt, greedy(n), keep.back()->sink());
  keep.back()->wait();
  return keep.back().get();
}

void expect_same(const Collector& alone, const Collector& batched, const std::string& what) {
  EXPECT_EQ(batched.reason, "length") << what << " " << batched.error;
  EXPECT_EQ(alone.tokens, batched.tokens) << what;
  ASSERT_EQ(alone.logprobs.size(), batched.logprobs.size()) << what;
  for (size_t i = 0; i < alone.logprobs.size(); ++i)
    EXPECT_NEAR(alone.logprobs[i], batched.logprobs[i], 1e-4f) << what << " token " << i;
}

class Batching : public testing::TestWithParam<std::string> {};

// 8 requests of different prompt lengths arriving at staggered times, with a small token budget
// (prompts are chunked, decodes and prefill chunks share steps).
TEST_P(Batching, StaggeredRequestsMatchEachRunAlone) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  const int64_t lens[8] = {5, 37, 12, 64, 1, 23, 50, 9};
  std::vector<std::unique_ptr<Collector>> keep;
  std::vector<Collector*> alone;
  for (int i = 0; i < 8; ++i)
    alone.push_back(run_alone(f.model(), options(), random_prompt(lens[i], V, 100 + i), 10 + i, keep));
  GeneratorOptions o = options();
  o.max_num_batched_tokens = 24;
  Generator g(f.model(), o);
  std::vector<std::unique_ptr<Collector>> batched;
  for (int i = 0; i < 8; ++i) {
    batched.push_back(std::make_unique<Collector>());
    g.submit(random_prompt(lens[i], V, 100 + i), greedy(10 + i), batched.back()->sink());
    if (i % 2 == 1) batched.back()->wait_tokens(2);  // arrive while others decode
  }
  for (int i = 0; i < 8; ++i) {
    batched[static_cast<size_t>(i)]->wait();
    expect_same(*alone[static_cast<size_t>(i)], *batched[static_cast<size_t>(i)], "request " + std::to_string(i));
  }
  EXPECT_GT(g.stats().steps.load(), 0);
  wait_idle(g);
  EXPECT_EQ(g.running(), 0);
}

// Sampled requests (each with its seed, top-p, top-k or min-p) drawn on the backend's threads, as
// the server runs them: each gives the tokens it gives alone.
TEST_P(Batching, SeededSampledRequestsDrawnInParallelMatchEachRunAlone) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  auto sampled = [](int i) {
    GenerationParams p = greedy(12);
    p.sampling.temperature = 0.5f + 0.25f * static_cast<float>(i % 3);
    p.sampling.top_p = i % 2 ? 0.9f : 1.0f;
    p.sampling.top_k = i % 4 == 3 ? 20 : 0;
    p.min_p = i == 5 ? 0.05f : 0.0f;
    p.has_seed = true;
    p.sampling.seed = 1000 + static_cast<uint64_t>(i);
    return p;
  };
  GeneratorOptions o = options();
  o.backend = f.be.get();
  std::vector<std::unique_ptr<Collector>> keep, batched;
  std::vector<Collector*> alone;
  for (int i = 0; i < 8; ++i) {
    keep.push_back(std::make_unique<Collector>());
    Generator one(f.model(), o);
    one.submit(random_prompt(3 + i, V, 200 + i), sampled(i), keep.back()->sink());
    keep.back()->wait();
    alone.push_back(keep.back().get());
  }
  Generator g(f.model(), o);
  for (int i = 0; i < 8; ++i) {
    batched.push_back(std::make_unique<Collector>());
    g.submit(random_prompt(3 + i, V, 200 + i), sampled(i), batched.back()->sink());
  }
  std::set<int32_t> distinct;
  for (int i = 0; i < 8; ++i) {
    batched[static_cast<size_t>(i)]->wait();
    expect_same(*alone[static_cast<size_t>(i)], *batched[static_cast<size_t>(i)], "sampled request " + std::to_string(i));
    distinct.insert(batched[static_cast<size_t>(i)]->tokens.begin(), batched[static_cast<size_t>(i)]->tokens.end());
  }
  EXPECT_GT(distinct.size(), 20u);  // really sampled, not a greedy run
}

INSTANTIATE_TEST_SUITE_P(Models, Batching,
                         testing::Values("tiny-qwen2-q8_0.gguf", "tiny-qwen2-q4_0.gguf", "tiny-qwen2-f32.gguf",
                                         "tiny-llama-q4_k_m.gguf"));

// A cache too small for every request at once: the newest are preempted and recomputed, and
// their tokens are those of an uninterrupted run.
TEST(BatchingEngine, PreemptedRequestsResumeWithTheSameTokens) {
  Fixture f("tiny-qwen2-q8_0.gguf");
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  GeneratorOptions o = options(64);
  o.block_size = 4;
  o.kv_cache_bytes = KvStore::bytes_per_token(f.model().config(), o.kv_type) * 4 * (64 / 4 + 1 + 8);
  std::vector<std::unique_ptr<Collector>> keep;
  std::vector<Collector*> alone;
  for (int i = 0; i < 4; ++i) alone.push_back(run_alone(f.model(), options(64), random_prompt(10 + i, V, 7 + i), 40, keep));
  Generator g(f.model(), o);
  std::vector<std::unique_ptr<Collector>> batched;
  for (int i = 0; i < 4; ++i) {
    batched.push_back(std::make_unique<Collector>());
    g.submit(random_prompt(10 + i, V, 7 + i), greedy(40), batched.back()->sink());
  }
  for (int i = 0; i < 4; ++i) {
    batched[static_cast<size_t>(i)]->wait();
    expect_same(*alone[static_cast<size_t>(i)], *batched[static_cast<size_t>(i)], "request " + std::to_string(i));
  }
  wait_idle(g);
  EXPECT_GT(g.stats().preemptions.load(), 0);
  EXPECT_DOUBLE_EQ(g.stats().kv_usage.load(), 0.0);
}

// A second request sharing a long prefix computes only its new tokens and answers identically.
TEST(BatchingEngine, SharedPrefixIsServedFromTheCache) {
  Fixture f("tiny-qwen2-q8_0.gguf");
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  const std::vector<int32_t> prefix = random_prompt(100, V, 3);
  std::vector<int32_t> a = prefix, b = prefix;
  for (int32_t t : random_prompt(7, V, 4)) a.push_back(t);
  for (int32_t t : random_prompt(5, V, 5)) b.push_back(t);
  std::vector<std::unique_ptr<Collector>> keep;
  Collector* b_alone = run_alone(f.model(), options(), b, 8, keep);
  Generator g(f.model(), options());
  Collector ca, cb;
  g.submit(a, greedy(8), ca.sink());
  ca.wait();
  wait_idle(g);
  const int64_t hits0 = g.stats().prefix_hits.load(), steps0 = g.stats().batched_tokens.load();
  g.submit(b, greedy(8), cb.sink());
  cb.wait();
  wait_idle(g);
  expect_same(*b_alone, cb, "shared-prefix request");
  EXPECT_EQ(g.stats().prefix_hits.load() - hits0, 96);  // 6 full blocks of 16
  // Computed: 105 - 96 prompt tokens, then 7 decode steps.
  EXPECT_EQ(g.stats().batched_tokens.load() - steps0, 105 - 96 + 7);
  // The same salt shares, another does not.
  GenerationParams salted = greedy(8);
  salted.cache_salt = 77;
  Collector cs;
  const int64_t hits1 = g.stats().prefix_hits.load();
  g.submit(b, salted, cs.sink());
  cs.wait();
  wait_idle(g);
  EXPECT_EQ(g.stats().prefix_hits.load(), hits1);
  expect_same(*b_alone, cs, "salted request");
}

// Prompt log-probs: position i's logits give prompt token i + 1. They equal the log-probs the
// same tokens get when generated (a greedy continuation fed back as a prompt), whether the prompt
// runs in one chunk or in many, after its prefix was cached by another request (it is recomputed,
// never read from the cache), or while requests around it are preempted.
TEST(BatchingEngine, PromptLogprobsMatchGeneratedOnesChunkedCachedAndPreempted) {
  Fixture f("tiny-qwen2-q8_0.gguf");
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  const std::vector<int32_t> prompt = random_prompt(30, V, 11);
  std::vector<std::unique_ptr<Collector>> keep;
  Collector* gen = run_alone(f.model(), options(64), prompt, 20, keep);
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), gen->tokens.begin(), gen->tokens.end());
  GenerationParams p = greedy(1);
  p.prompt_logprobs = 3;
  auto check = [&](const Collector& c, const std::string& what) {
    ASSERT_EQ(c.prompt_logprobs.size(), full.size() - 1) << what << " " << c.error;
    for (size_t k = 0; k < gen->logprobs.size(); ++k) {
      const TokenLogprob& lp = c.prompt_logprobs[prompt.size() - 1 + k];
      EXPECT_NEAR(lp.logprob, gen->logprobs[k], 1e-4f) << what << " generated token " << k;
      EXPECT_EQ(lp.rank, 1) << what << " a greedy token ranks first";
      ASSERT_EQ(lp.top.size(), 3u);
      EXPECT_EQ(lp.top[0].first, gen->tokens[k]) << what;
    }
  };
  {  // one chunk, then 8-token chunks, then after another request cached the whole prompt
    Generator g(f.model(), options(64));
    Collector whole;
    g.submit(full, p, whole.sink());
    whole.wait();
    check(whole, "one chunk");
    Collector again;
    g.submit(full, p, again.sink());
    again.wait();
    check(again, "after the prompt was cached");
    wait_idle(g);
  }
  {
    GeneratorOptions o = options(64);
    o.max_num_batched_tokens = 8;
    Generator g(f.model(), o);
    Collector chunked;
    g.submit(full, p, chunked.sink());
    chunked.wait();
    check(chunked, "8-token chunks");
  }
  {  // a KV cache so small that the requests preempt each other
    GeneratorOptions o = options(64);
    o.block_size = 4;
    o.max_num_batched_tokens = 16;
    o.kv_cache_bytes = KvStore::bytes_per_token(f.model().config(), o.kv_type) * 4 * (64 / 4 + 1 + 4);
    Generator g(f.model(), o);
    std::vector<std::unique_ptr<Collector>> others;
    for (int i = 0; i < 3; ++i) {
      others.push_back(std::make_unique<Collector>());
      g.submit(random_prompt(12, V, 40 + i), greedy(40), others.back()->sink());
    }
    Collector pre;
    g.submit(full, p, pre.sink());
    pre.wait();
    for (auto& c : others) c->wait();
    check(pre, "with preemptions");
    wait_idle(g);
    EXPECT_GT(g.stats().preemptions.load(), 0);
    EXPECT_DOUBLE_EQ(g.stats().kv_usage.load(), 0.0);
  }
}

// Under load with random aborts (queued, mid-prefill and mid-decode), every request ends and
// every KV block returns.
TEST(BatchingEngine, RandomAbortsReturnEveryBlockAndNothingHangs) {
  Fixture f("tiny-qwen2-q4_0.gguf");
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  GeneratorOptions o = options(128);
  o.max_num_batched_tokens = 32;
  o.max_num_seqs = 6;
  o.kv_cache_bytes = KvStore::bytes_per_token(f.model().config(), o.kv_type) * 16 * 20;
  Generator g(f.model(), o);
  std::mt19937 rng(11);
  std::vector<std::unique_ptr<Collector>> cs;
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  for (int i = 0; i < 40; ++i) {
    cs.push_back(std::make_unique<Collector>());
    jobs.push_back(g.submit(random_prompt(1 + rng() % 90, V, 1000 + i), greedy(1 + rng() % 30), cs.back()->sink()));
    if (rng() % 3 == 0) jobs[rng() % jobs.size()]->cancel();
    if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
  }
  int aborted = 0;
  for (auto& c : cs) {
    c->wait();
    aborted += c->reason == "abort";
    EXPECT_TRUE(c->reason == "abort" || c->reason == "length") << c->reason;
  }
  EXPECT_GT(aborted, 0);
  wait_idle(g);
  EXPECT_EQ(g.running(), 0);
  EXPECT_DOUBLE_EQ(g.stats().kv_usage.load(), 0.0);
  EXPECT_EQ(g.stats().running.load() + g.stats().waiting.load(), 0);
}

// f16 and q8_0 caches run the same engine; a prompt outside the vocabulary fails alone.
TEST(BatchingEngine, CacheTypesAndBadPrompts) {
  Fixture f("tiny-qwen2-q8_0.gguf");
  ASSERT_TRUE(f.m.ok()) << f.m.error();
  const int64_t V = f.model().config().n_vocab;
  for (DType t : {DType::F16, DType::Q8_0}) {
    GeneratorOptions o = options();
    o.kv_type = t;
    ASSERT_TRUE(plan_kv_cache(f.model().config(), o).ok());
    Generator g(f.model(), o);
    Collector good, bad;
    std::vector<int32_t> bad_prompt = {1, 2, static_cast<int32_t>(V) + 5};
    g.submit(bad_prompt, greedy(4), bad.sink());
    g.submit(random_prompt(20, V, 1), greedy(6), good.sink());
    good.wait();
    bad.wait();
    EXPECT_EQ(good.tokens.size(), 6u) << dtype_name(t);
    EXPECT_EQ(bad.reason, "abort");
    EXPECT_NE(bad.error.find("outside the vocabulary"), std::string::npos) << bad.error;
  }
  GeneratorOptions small = options(4096);
  small.kv_cache_bytes = 1 << 20;
  const auto p = plan_kv_cache(f.model().config(), small);
  EXPECT_FALSE(p.ok());
  EXPECT_NE(p.error().find("max_model_len 4096"), std::string::npos) << p.error();
}

}  // namespace
}  // namespace infera
