// infera eval: evaluate token ids as one batch and write the logits of every position.
#include <cstdio>
#include <memory>

#include "base/thread_pool.h"
#include "cli_util.h"
#include "commands.h"
#include "model/loader.h"

namespace infera::cli {

namespace {
struct EvalArgs {
  std::string model, token_ids, logits_out;
  int threads = 0;
};

int run_eval(const EvalArgs& a) {
  auto ids = parse_token_ids(a.token_ids);
  if (!ids) return fail(ids.error());
  auto backend = make_cpu_backend(a.threads > 0 ? a.threads : default_thread_count());
  auto m = load_model(a.model, *backend);
  if (!m) return fail(m.error());
  Model& model = *m->model;
  KvCache kv = KvCache::make(model.config(), static_cast<int64_t>(ids->size()));
  std::vector<float> logits;
  if (Status s = model.forward(*ids, kv, /*all_logits=*/true, logits); !s) return fail(s.message());
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(a.logits_out.c_str(), "wb"), &std::fclose);
  if (!f) return fail(fmt::format("{}: cannot create", a.logits_out));
  if (std::fwrite(logits.data(), sizeof(float), logits.size(), f.get()) != logits.size())
    return fail(fmt::format("{}: write failed", a.logits_out));
  std::fprintf(stderr, "infera: wrote logits [%zu, %lld] to %s\n", ids->size(),
               static_cast<long long>(model.config().n_vocab), a.logits_out.c_str());
  return 0;
}
}  // namespace

void add_eval(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand("eval", "Evaluate token ids as one batch; write float32 logits [n_tokens, n_vocab]");
  c->add_option("--model", args->model, "GGUF file or Hugging Face model folder")->required();
  c->add_option("--token-ids", args->token_ids, "token ids, e.g. \"1 2 3\"")->required();
  c->add_option("--logits-out", args->logits_out, "output file: float32 little-endian, row-major")->required();
  c->add_option("--threads", args->threads, "worker threads (default: the physical cores)");
  c->callback([args, exit_code] { *exit_code = run_eval(*args); });
}

}  // namespace infera::cli
