#include "engine/generator.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <cstdio>
#include <unordered_map>

#include "base/check.h"

namespace infera {

void apply_penalties(const GenerationParams& p, const std::vector<int32_t>& prompt,
                     const std::vector<int32_t>& output, std::span<float> logits) {
  const int64_t V = static_cast<int64_t>(logits.size());
  for (const auto& [id, bias] : p.logit_bias)
    if (id >= 0 && id < V) logits[static_cast<size_t>(id)] += bias;
  if (p.repetition_penalty != 1.0f) {
    std::vector<bool> seen(static_cast<size_t>(V), false);
    for (const auto* v : {&prompt, &output})
      for (int32_t t : *v)
        if (t >= 0 && t < V) seen[static_cast<size_t>(t)] = true;
    for (int64_t i = 0; i < V; ++i) {
      if (!seen[static_cast<size_t>(i)]) continue;
      float& l = logits[static_cast<size_t>(i)];
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t t : output) ++counts[t];
    for (const auto& [t, n] : counts)
      if (t >= 0 && t < V) logits[static_cast<size_t>(t)] -= p.frequency_penalty * n + p.presence_penalty;
  }
}

namespace {

// min_p: drop tokens whose probability (at the sampling temperature) is below min_p x the top one.
void apply_min_p(float min_p, float temperature, std::span<float> logits) {
  if (min_p <= 0.0f || temperature <= 0.0f) return;
  const float mx = *std::max_element(logits.begin(), logits.end());
  const float cut = mx + temperature * std::log(min_p);
  for (float& l : logits)
    if (l < cut) l = -INFINITY;
}

GenEvent aborted_event(std::string error) {
  GenEvent e;
  e.finished = true;
  e.finish_reason = "abort";
  e.error = std::move(error);
  return e;
}

}  // namespace

TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t k) {
  float mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  auto lp = [&](int32_t id) { return std::max(-9999.0f, logits[static_cast<size_t>(id)] - lse); };
  TokenLogprob out;
  out.logprob = lp(token);
  const float lt = logits[static_cast<size_t>(token)];
  for (float l : logits) out.rank += l >= lt;
  if (k > 0) {
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    const size_t kk = std::min(static_cast<size_t>(k), ids.size());
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(kk), ids.end(), [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    });
    for (size_t i = 0; i < kk; ++i) out.top.emplace_back(ids[i], lp(ids[i]));
  }
  return out;
}

namespace {
int64_t available_memory_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  long long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024;
}
}  // namespace

Result<KvPlan> plan_kv_cache(const ModelConfig& c, const GeneratorOptions& o) {
  INFERA_RETURN_IF_ERROR(KvStore::check_type(c, o.kv_type));
  if (o.block_size < 1 || o.block_size > 1024) return error("block size must be 1..1024, got {}", o.block_size);
  const int64_t per_token = KvStore::bytes_per_token(c, o.kv_type);
  const int64_t per_block = per_token * o.block_size;
  const int64_t min_blocks = (o.max_model_len + o.block_size - 1) / o.block_size + 1;
  int64_t bytes = o.kv_cache_bytes;
  if (bytes <= 0) {
    const int64_t avail = available_memory_bytes();
    bytes = std::min<int64_t>(int64_t{4} << 30, avail > 0 ? avail * 2 / 5 : int64_t{4} << 30);
    // Past twice what max_num_seqs full-length sequences hold, more blocks only keep old prefixes.
    const int64_t useful = 2 * o.max_num_seqs * (min_blocks - 1) * per_block + per_block;
    bytes = std::max(std::min(bytes, useful), min_blocks * per_block);
  }
  KvPlan p;
  p.num_blocks = std::min<int64_t>(bytes / per_block, int64_t{1} << 30);
  if (p.num_blocks < min_blocks)
    return error("the KV cache ({:.3g} GiB, {} tokens) cannot hold one sequence of max_model_len {}; raise "
                 "--kv-cache-gb to at least {:.3g} or lower --max-model-len",
                 static_cast<double>(bytes) / (1 << 30), std::max<int64_t>(0, p.num_blocks - 1) * o.block_size,
                 o.max_model_len, static_cast<double>(min_blocks * per_block) / (1 << 30));
  p.tokens = (p.num_blocks - 1) * o.block_size;
  p.bytes = p.num_blocks * per_block;
  p.max_concurrency = static_cast<double>(p.tokens) / static_cast<double>(o.max_model_len);
  return p;
}

namespace {
KvPlan checked_plan(const ModelConfig& c, const GeneratorOptions& o) {
  Result<KvPlan> p = plan_kv_cache(c, o);
  CHECK(p.ok());
  return *p;
}
KvStore make_store(const ModelConfig& c, const GeneratorOptions& o, const KvPlan& p) {
  Result<KvStore> s = KvStore::make(c, o.kv_type, p.num_blocks, o.block_size);
  CHECK(s.ok());
  return std::move(*s);
}
SchedulerConfig scheduler_config(const GeneratorOptions& o, const KvPlan& p) {
  SchedulerConfig s;
  s.max_num_batched_tokens = o.max_num_batched_tokens;
  s.max_num_seqs = o.max_num_seqs;
  s.num_blocks = static_cast<int32_t>(p.num_blocks);
  s.block_size = o.block_size;
  s.prefix_caching = o.prefix_caching;
  return s;
}
}  // namespace

Generator::Generator(Model& model, const GeneratorOptions& o)
    : model_(model),
      opts_(o),
      plan_(checked_plan(model.config(), o)),
      kv_(make_store(model.config(), o, plan_)),
      sched_(scheduler_config(o, plan_)),
      thread_([this] { run(); }) {}

Generator::~Generator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<GenerationJob> Generator::submit(std::vector<int32_t> prompt, GenerationParams params,
                                                 std::function<void(const GenEvent&)> sink) {
  auto job = std::make_shared<GenerationJob>();
  job->prompt_ = std::move(prompt);
  job->params_ = std::move(params);
  job->sink_ = std::move(sink);
  job->submitted_ = GenerationJob::Clock::now();
  ++running_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming_.push_back(job);
  }
  cv_.notify_one();
  return job;
}

void Generator::finish(GenerationJob& job, const GenEvent& e) {
  if (job.seq_.phase != SeqState::Phase::kNew) sched_.remove(&job.seq_);
  job.seq_.phase = SeqState::Phase::kDone;
  GenEvent last = e;
  if (job.scheduled_ != GenerationJob::Clock::time_point{}) {
    using S = std::chrono::duration<double>;
    const auto first = job.first_token_ == GenerationJob::Clock::time_point{} ? job.scheduled_ : job.first_token_;
    const auto end = job.last_token_ == GenerationJob::Clock::time_point{} ? first : job.last_token_;
    last.timing = RequestTiming{S(job.scheduled_ - job.submitted_).count(), S(first - job.scheduled_).count(),
                                S(end - first).count(), S(end - job.scheduled_).count()};
  }
  job.sink_(last);
  --running_;
}

void Generator::admit(const std::shared_ptr<GenerationJob>& job) {
  const GenerationParams& p = job->params_;
  const int64_t n_prompt = static_cast<int64_t>(job->prompt_.size());
  const int64_t n_vocab = model_.config().n_vocab;
  std::string err;
  if (n_prompt == 0) err = "no tokens to evaluate";
  for (int64_t i = 0; i < n_prompt && err.empty(); ++i)
    if (job->prompt_[static_cast<size_t>(i)] < 0 || job->prompt_[static_cast<size_t>(i)] >= n_vocab)
      err = fmt::format("token id {} at position {} is outside the vocabulary (0..{})", job->prompt_[static_cast<size_t>(i)],
                        i, n_vocab - 1);
  if (err.empty() && n_prompt >= opts_.max_model_len)
    err = fmt::format("context is full: {} prompt tokens leave no room in the context of {}", n_prompt,
                      opts_.max_model_len);
  if (!err.empty() || job->cancelled()) return finish(*job, aborted_event(err));
  SamplingParams sp = p.sampling;
  if (!p.has_seed) sp.seed = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  job->sampler_ = std::make_unique<Sampler>(sp);
  if (p.constraint) job->constraint_ = p.constraint();
  job->temperature_ = sp.temperature;
  job->limit_ = std::min<int64_t>(p.max_tokens, opts_.max_model_len - n_prompt);
  job->seq_.tokens = job->prompt_;
  job->seq_.blocks.extra_key = p.cache_salt;
  if (p.prompt_logprobs >= 0) {
    job->seq_.skip_prefix_cache = true;
    job->prompt_lp_.resize(static_cast<size_t>(n_prompt - 1));
  }
  sched_.add(&job->seq_);
  active_.push_back(job);
}

Generator::Pick Generator::pick_next(GenerationJob& job, std::span<float> logits) {
  const GenerationParams& p = job.params_;
  const std::vector<int32_t>& output = job.output_;
  const int32_t V = static_cast<int32_t>(logits.size());
  std::vector<float> raw;
  if (p.logprobs >= 0) raw.assign(logits.begin(), logits.end());  // log-probs are of the raw model output (vLLM's default)
  apply_penalties(p, job.prompt_, output, logits);
  if (static_cast<int64_t>(output.size()) < p.min_tokens) {
    for (int32_t t : p.eos_ids) if (t >= 0 && t < V) logits[static_cast<size_t>(t)] = -INFINITY;
    for (int32_t t : p.stop_token_ids) if (t >= 0 && t < V) logits[static_cast<size_t>(t)] = -INFINITY;
  }
  for (const std::vector<int32_t>& w : p.bad_words_ids) {
    if (w.empty() || w.back() < 0 || w.back() >= V) continue;
    const size_t k = w.size() - 1;  // the output must end with w[0, k)
    if (output.size() >= k && std::equal(w.begin(), w.end() - 1, output.end() - static_cast<std::ptrdiff_t>(k)))
      logits[static_cast<size_t>(w.back())] = -INFINITY;
  }
  if (!p.allowed_token_ids.empty()) {
    std::vector<float> kept(logits.size(), -INFINITY);
    for (int32_t t : p.allowed_token_ids)
      if (t >= 0 && t < V) kept[static_cast<size_t>(t)] = logits[static_cast<size_t>(t)];
    std::copy(kept.begin(), kept.end(), logits.begin());
  }
  // A structured output allows only EOS once it is whole; with ignore_eos the EOS then sampled does
  // not stop the request and adds no text (as vLLM), so the output stays whole.
  if (job.constraint_) job.constraint_->mask(logits, p.eos_ids);
  const bool can_rule_out_all = job.constraint_ || !p.allowed_token_ids.empty();  // (else EOS at least stays)
  Pick pick;
  if (can_rule_out_all && std::none_of(logits.begin(), logits.end(), [](float x) { return x > -INFINITY; })) {
    pick.ruled_out = true;
    return pick;
  }
  apply_min_p(p.min_p, job.temperature_, logits);
  for (float& x : logits)  // a NaN (a broken model or an extreme penalty) is never drawn, never sorted
    if (std::isnan(x)) x = -INFINITY;
  pick.next = job.sampler_->sample(logits);
  if (job.constraint_) job.constraint_->accept(pick.next);
  if (p.logprobs >= 0) pick.logprobs.push_back(token_logprob(raw, pick.next, p.logprobs));
  return pick;
}

bool Generator::commit_next(GenerationJob& job, Pick pick) {
  const GenerationParams& p = job.params_;
  std::vector<int32_t>& output = job.output_;
  auto is_eos = [&](int32_t t) { return !p.ignore_eos && std::count(p.eos_ids.begin(), p.eos_ids.end(), t) > 0; };
  auto is_stop = [&](int32_t t) { return std::count(p.stop_token_ids.begin(), p.stop_token_ids.end(), t) > 0; };
  if (pick.ruled_out) {
    // Every id is ruled out (a structured output that is whole, or that no token can continue, while
    // min_tokens or allowed_token_ids forbid EOS): the request ends here.
    GenEvent e;
    e.finished = true;
    e.finish_reason = "stop";
    if (p.prompt_logprobs >= 0 && output.empty()) e.prompt_logprobs = std::move(job.prompt_lp_);
    finish(job, e);
    return false;
  }
  const int32_t next = pick.next;
  output.push_back(next);
  job.last_token_ = GenerationJob::Clock::now();
  if (output.size() == 1) job.first_token_ = job.last_token_;
  GenEvent e;
  e.tokens = {next};
  if (p.prompt_logprobs >= 0 && output.size() == 1) {
    e.prompt_logprobs = std::move(job.prompt_lp_);
    job.prompt_lp_.clear();
  }
  e.logprobs = std::move(pick.logprobs);
  if (is_eos(next) || is_stop(next)) {
    e.finished = true;
    e.finish_reason = "stop";
    e.stop_token = next;
    e.stop_token_is_eos = is_eos(next);
  } else if (static_cast<int64_t>(output.size()) >= job.limit_) {
    e.finished = true;
    e.finish_reason = "length";
  }
  if (e.finished) {
    finish(job, e);
    return false;
  }
  job.seq_.tokens.push_back(next);
  job.sink_(e);
  return true;
}

void Generator::step() {
  // Aborts free their blocks at once.
  std::erase_if(active_, [&](const std::shared_ptr<GenerationJob>& j) {
    if (!j->cancelled()) return false;
    finish(*j, aborted_event({}));
    return true;
  });
  if (active_.empty()) return;
  const SchedulerOutput out = sched_.schedule();
  if (out.chunks.empty()) return;
  // The flattened batch: every chunk's tokens with their positions and sequence index; logits
  // rows for the chunks that complete (the next token) and for the prompt positions of requests
  // that want prompt log-probs (position i gives the log-prob of prompt token i + 1).
  std::vector<int32_t> tokens, positions, seq, rows;
  std::vector<std::span<const int32_t>> tables;
  std::vector<GenerationJob*> jobs;
  int64_t iteration = 0;  // vLLM's iteration tokens (below)
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ScheduledChunk& c = out.chunks[i];
    GenerationJob* job = nullptr;
    for (const auto& j : active_)
      if (&j->seq_ == c.seq) job = j.get();
    CHECK(job);
    jobs.push_back(job);
    const bool decode = c.start >= static_cast<int64_t>(job->prompt_.size()) && c.num_new == 1;
    iteration += (decode ? 0 : c.num_new) + (c.completes ? 1 : 0);
    if (job->scheduled_ == GenerationJob::Clock::time_point{}) job->scheduled_ = GenerationJob::Clock::now();
    const int64_t n_prompt_lp = static_cast<int64_t>(job->prompt_lp_.size());  // 0 once sent
    for (int64_t k = 0; k < c.num_new; ++k) {
      tokens.push_back(c.seq->tokens[static_cast<size_t>(c.start + k)]);
      positions.push_back(static_cast<int32_t>(c.start + k));
      seq.push_back(static_cast<int32_t>(i));
      if (c.start + k < n_prompt_lp) rows.push_back(static_cast<int32_t>(tokens.size() - 1));
    }
    if (c.completes) rows.push_back(static_cast<int32_t>(tokens.size() - 1));
    tables.emplace_back(c.seq->blocks.table);
  }
  std::vector<float> logits;
  const ForwardBatch batch{tokens, positions, seq, tables, rows};
  Status st = model_.forward_batch(batch, kv_, logits);
  sched_.step_done(out);
  const int64_t V = model_.config().n_vocab;
  std::vector<GenerationJob*> done;
  std::vector<std::pair<GenerationJob*, std::span<float>>> picking;  // sequences whose next token is due
  size_t r = 0;
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ScheduledChunk& c = out.chunks[i];
    GenerationJob* job = jobs[i];
    if (!st) {
      finish(*job, aborted_event(st.message()));
      done.push_back(job);
      continue;
    }
    auto row_at = [&](size_t k) { return std::span<float>(logits.data() + static_cast<int64_t>(k) * V, static_cast<size_t>(V)); };
    const int64_t n_prompt_lp = static_cast<int64_t>(job->prompt_lp_.size());
    for (int64_t pos = c.start; pos < c.start + c.num_new && pos < n_prompt_lp; ++pos)
      job->prompt_lp_[static_cast<size_t>(pos)] =
          token_logprob(row_at(r++), job->prompt_[static_cast<size_t>(pos + 1)], job->params_.prompt_logprobs);
    if (!c.completes) continue;
    picking.push_back({job, row_at(r++)});
  }
  // The draws of the step's sequences run on the backend's threads (each touches only its job and
  // its row); the results go out in order.
  std::vector<Pick> picks(picking.size());
  auto pick_range = [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) picks[static_cast<size_t>(k)] = pick_next(*picking[static_cast<size_t>(k)].first, picking[static_cast<size_t>(k)].second);
  };
  if (opts_.backend && picking.size() > 1) opts_.backend->parallel_for(static_cast<int64_t>(picking.size()), pick_range);
  else pick_range(0, static_cast<int64_t>(picking.size()));
  for (size_t k = 0; k < picking.size(); ++k)
    if (!commit_next(*picking[k].first, std::move(picks[k]))) done.push_back(picking[k].first);
  std::erase_if(active_, [&](const std::shared_ptr<GenerationJob>& j) {
    return std::find(done.begin(), done.end(), j.get()) != done.end();
  });
  stats_.steps.fetch_add(1);
  stats_.batched_tokens.fetch_add(static_cast<int64_t>(tokens.size()));
  // vLLM's iteration tokens: prompt tokens computed plus tokens generated (a decode step's input
  // token is the previous step's output, counted there).
  size_t bucket = 0;
  while (bucket < GeneratorStats::kIterationBuckets.size() && iteration > GeneratorStats::kIterationBuckets[bucket])
    ++bucket;
  stats_.iteration_tokens.fetch_add(iteration);
  stats_.iteration_counts[bucket].fetch_add(1);
}

void Generator::abort_all() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort_all_ = true;
  }
  cv_.notify_all();
}

void Generator::run() {
  for (;;) {
    std::deque<std::shared_ptr<GenerationJob>> arrived;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || abort_all_ || !incoming_.empty() || !active_.empty(); });
      arrived.swap(incoming_);
      if (abort_all_) {
        abort_all_ = false;
        for (auto& j : arrived) j->cancel();
        for (auto& j : active_) j->cancel();
      }
      if (stop_) {
        lock.unlock();
        for (auto& j : arrived) finish(*j, aborted_event({}));
        for (auto& j : active_) finish(*j, aborted_event({}));
        active_.clear();
        return;
      }
    }
    for (auto& j : arrived) admit(j);
    step();
    stats_.running.store(sched_.num_running());
    stats_.waiting.store(sched_.num_waiting());
    stats_.preemptions.store(sched_.num_preemptions());
    stats_.prefix_queries.store(sched_.kv().queries());
    stats_.prefix_hits.store(sched_.kv().hits());
    stats_.kv_usage.store(sched_.kv().usage());
  }
}

}  // namespace infera
