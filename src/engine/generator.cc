#include "engine/generator.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_map>

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

Generator::Generator(Model& model, int64_t n_ctx)
    : model_(model), n_ctx_(n_ctx), kv_(KvCache::make(model.config(), n_ctx)), thread_([this] { run(); }) {}

Generator::~Generator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (current_) current_->cancel();
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
  ++running_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(job);
  }
  cv_.notify_one();
  return job;
}

void Generator::run() {
  for (;;) {
    std::shared_ptr<GenerationJob> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) {
        for (auto& j : queue_) j->sink_(aborted_event({}));
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      current_ = job;
    }
    if (job->cancelled()) {
      job->sink_(aborted_event({}));
    } else {
      generate(*job);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_.reset();
    }
    --running_;
  }
}

void Generator::generate(GenerationJob& job) {
  const GenerationParams& p = job.params_;
  kv_.n_past = 0;
  std::vector<float> logits;
  if (Status s = model_.forward(job.prompt_, kv_, false, logits); !s) {
    job.sink_(aborted_event(s.message()));
    return;
  }
  SamplingParams sp = p.sampling;
  if (!p.has_seed) sp.seed = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  Sampler sampler(sp);
  std::vector<int32_t> output;
  const int64_t limit = std::min<int64_t>(p.max_tokens, n_ctx_ - static_cast<int64_t>(job.prompt_.size()));
  auto is_eos = [&](int32_t t) { return !p.ignore_eos && std::count(p.eos_ids.begin(), p.eos_ids.end(), t) > 0; };
  auto is_stop = [&](int32_t t) { return std::count(p.stop_token_ids.begin(), p.stop_token_ids.end(), t) > 0; };
  for (;;) {
    if (job.cancelled()) {
      job.sink_(aborted_event({}));
      return;
    }
    TokenLogprob lp;
    std::vector<float> raw;
    if (p.logprobs >= 0) raw = logits;  // log-probs are of the raw model output (vLLM's default)
    apply_penalties(p, job.prompt_, output, logits);
    if (static_cast<int64_t>(output.size()) < p.min_tokens) {
      for (int32_t t : p.eos_ids) if (t >= 0 && t < static_cast<int32_t>(logits.size())) logits[t] = -INFINITY;
      for (int32_t t : p.stop_token_ids) if (t >= 0 && t < static_cast<int32_t>(logits.size())) logits[t] = -INFINITY;
    }
    if (!p.allowed_token_ids.empty()) {
      std::vector<float> kept(logits.size(), -INFINITY);
      for (int32_t t : p.allowed_token_ids)
        if (t >= 0 && t < static_cast<int32_t>(logits.size())) kept[static_cast<size_t>(t)] = logits[static_cast<size_t>(t)];
      logits.swap(kept);
    }
    apply_min_p(p.min_p, sp.temperature, logits);
    const int32_t next = sampler.sample(logits);
    output.push_back(next);
    GenEvent e;
    e.tokens = {next};
    if (p.logprobs >= 0) e.logprobs.push_back(token_logprob(raw, next, p.logprobs));
    if (is_eos(next) || is_stop(next)) {
      e.finished = true;
      e.finish_reason = "stop";
      e.stop_token = next;
      e.stop_token_is_eos = is_eos(next);
    } else if (static_cast<int64_t>(output.size()) >= limit) {
      e.finished = true;
      e.finish_reason = "length";
    }
    job.sink_(e);
    if (e.finished) return;
    const int32_t tok[1] = {next};
    if (Status s = model_.forward(tok, kv_, false, logits); !s) {
      job.sink_(aborted_event(s.message()));
      return;
    }
  }
}

}  // namespace infera
