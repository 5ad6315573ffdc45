// infera run: generate tokens from a prompt.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "base/thread_pool.h"
#include "cli_util.h"
#include "commands.h"
#include "engine/chat_prompt.h"
#include "engine/sampler.h"
#include "model/loader.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace infera::cli {

namespace {
struct RunArgs {
  std::string model, token_ids, prompt, chat;
  int n_predict = 128;
  float temp = 0.6f, top_p = 0.95f;
  int top_k = 0;
  uint64_t seed = 0;
  int threads = 0;
  int ctx = 4096;
  bool ignore_eos = false;
};

int run_generate(const RunArgs& a) {
  if (!a.prompt.empty() + !a.token_ids.empty() + !a.chat.empty() != 1)
    return fail("give the prompt as exactly one of --prompt TEXT, --chat TEXT or --token-ids \"1 2 3\"");
  // Text prompts are encoded as /v1/completions does (BOS prepended, added tokens parsed); chat
  // messages as /v1/chat/completions does (the chat template writes BOS itself).
  std::unique_ptr<Tokenizer> tokenizer;
  Result<std::vector<int32_t>> ids = std::vector<int32_t>();
  if (a.token_ids.empty()) {
    auto t = Tokenizer::load(a.model);
    if (!t) return fail(t.error());
    tokenizer = std::move(*t);
  }
  if (!a.prompt.empty()) {
    ids = tokenizer->encode(a.prompt, {true, SpecialTokens::kAll});
  } else if (!a.chat.empty()) {
    ChatRequest req;
    req.messages.push_back({{"role", "user"}, {"content", a.chat}});
    auto text = render_chat_prompt(*tokenizer, req);
    if (!text) return fail(text.error());
    ids = tokenizer->encode(*text, {false, SpecialTokens::kAll});
  } else {
    ids = parse_token_ids(a.token_ids);
  }
  if (!ids) return fail(ids.error());
  if (ids->empty()) return fail("the prompt encodes to no tokens");
  if (a.n_predict < 0) return fail("-n must be >= 0");
  if (a.temp < 0 || a.top_p <= 0 || a.top_p > 1) return fail("--temp must be >= 0 and --top-p in (0, 1]");
  auto backend = make_cpu_backend(a.threads > 0 ? a.threads : default_thread_count());
  auto m = load_model(a.model, *backend);
  if (!m) return fail(m.error());
  Model& model = *m->model;
  const int64_t n_ctx = std::min<int64_t>(a.ctx, static_cast<int64_t>(ids->size()) + a.n_predict);
  if (static_cast<int64_t>(ids->size()) > a.ctx)
    return fail(fmt::format("the prompt has {} tokens but the context is {} (raise --ctx)", ids->size(), a.ctx));
  KvCache kv = KvCache::make(model.config(), n_ctx);
  Sampler sampler({a.temp, a.top_k, a.top_p, a.seed});
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  if (Status s = model.forward(*ids, kv, false, logits); !s) return fail(s.message());
  const auto t1 = std::chrono::steady_clock::now();
  int n_gen = 0;
  std::optional<IncrementalDetokenizer> detok;
  if (tokenizer) detok.emplace(*tokenizer, /*skip_special=*/true);
  while (n_gen < a.n_predict) {
    const int32_t next = sampler.sample(logits);
    if (detok)
      std::printf("%s", detok->push(next).c_str());
    else
      std::printf("%s%d", n_gen ? " " : "", next);
    std::fflush(stdout);
    ++n_gen;
    if (!a.ignore_eos && next == model.config().eos_token_id) break;
    if (n_gen == a.n_predict || kv.n_past >= n_ctx) break;
    const int32_t tok[1] = {next};
    if (Status s = model.forward(tok, kv, false, logits); !s) return fail(s.message());
  }
  if (detok) std::printf("%s", detok->finish().c_str());
  std::printf("\n");
  std::fflush(stdout);
  const auto t2 = std::chrono::steady_clock::now();
  const double pp = std::chrono::duration<double>(t1 - t0).count(), tg = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr, "infera: prompt %zu tokens in %.3f s (%.1f t/s), generated %d tokens in %.3f s (%.2f t/s)\n",
               ids->size(), pp, static_cast<double>(ids->size()) / pp, n_gen, tg, n_gen / (tg > 0 ? tg : 1));
  return 0;
}
}  // namespace

void add_run(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Generate tokens from a prompt");
  c->add_option("--model", a->model, "GGUF file or Hugging Face model folder")->required();
  c->add_option("--token-ids", a->token_ids, "prompt as token ids, e.g. \"1 2 3\"");
  c->add_option("--prompt", a->prompt, "prompt text, encoded with the model's tokenizer (BOS added)");
  c->add_option("--chat", a->chat, "a user message, rendered with the model's chat template");
  c->add_option("-n,--n-predict", a->n_predict, "tokens to generate")->capture_default_str();
  c->add_option("--temp", a->temp, "temperature; 0 = greedy")->capture_default_str();
  c->add_option("--top-p", a->top_p, "nucleus sampling mass")->capture_default_str();
  c->add_option("--top-k", a->top_k, "keep the k most likely tokens (0 = all)")->capture_default_str();
  c->add_option("--seed", a->seed, "random seed")->capture_default_str();
  c->add_option("--threads", a->threads, "worker threads (default: the physical cores)");
  c->add_option("--ctx", a->ctx, "context size in tokens")->capture_default_str();
  c->add_flag("--ignore-eos", a->ignore_eos, "keep generating after the end-of-sequence token");
  c->callback([a, exit_code] { *exit_code = run_generate(*a); });
}

}  // namespace infera::cli
