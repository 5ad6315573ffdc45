// infera serve: the OpenAI-compatible API server (vLLM's flags where they exist).
#include <chrono>
#include <csignal>
#include <functional>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/mapped_file.h"
#include "base/thread_pool.h"
#include "cli_util.h"
#include "commands.h"
#include "engine/generator.h"
#include "model/loader.h"
#include "server/api_server.h"
#include "tokenizer/tokenizer.h"

namespace infera::cli {

namespace {
struct ServeArgs {
  std::string model, host = "0.0.0.0", chat_template, generation_config = "auto", reasoning_parser, tool_call_parser;
  bool enable_auto_tool_choice = false;
  int drain_timeout_s = 30;
  std::vector<std::string> served_names, api_keys;
  int port = 8000;
  int64_t max_model_len = 0;
  int threads = 0;
  int request_timeout_s = 10;
  // The batching engine (vLLM's names).
  double kv_cache_gb = 0;
  std::string kv_cache_dtype = "auto";
  int block_size = 16;
  int64_t max_num_batched_tokens = 512;
  int64_t max_num_seqs = 16;
  bool no_prefix_caching = false;
};

server::GenerationDefaults read_defaults(const LoadedModel& m, const Tokenizer& tok, bool use_config) {
  server::GenerationDefaults d;
  if (tok.eos_id() >= 0) d.eos_ids.push_back(tok.eos_id());
  const Json& g = m.generation_config;
  if (g.is_object()) {
    if (g.contains("eos_token_id")) {
      const Json& e = g["eos_token_id"];
      for (const Json& x : e.is_array() ? e : Json::array({e}))
        if (x.is_number_integer() && std::find(d.eos_ids.begin(), d.eos_ids.end(), x.get<int32_t>()) == d.eos_ids.end())
          d.eos_ids.push_back(x.get<int32_t>());
    }
    if (use_config) {
      auto num = [&](const char* k, std::optional<double>& out) {
        if (g.contains(k) && g[k].is_number()) out = g[k].get<double>();
      };
      num("temperature", d.temperature);
      num("top_p", d.top_p);
      num("min_p", d.min_p);
      num("repetition_penalty", d.repetition_penalty);
      if (g.contains("top_k") && g["top_k"].is_number_integer()) d.top_k = g["top_k"].get<int64_t>();
      if (g.contains("max_new_tokens") && g["max_new_tokens"].is_number_integer())
        d.max_new_tokens = g["max_new_tokens"].get<int64_t>();
    }
  } else if (use_config && m.format == WeightFormat::kGguf) {
    // GGUF files carry no generation_config; the R1 distills' values are the documented defaults.
    const std::string& t = tok.chat_template();
    if (t.find("<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>") != std::string::npos) {
      d.temperature = 0.6;
      d.top_p = 0.95;
    }
  }
  return d;
}

int run_serve(const ServeArgs& a) {
  const int threads = a.threads > 0 ? a.threads : default_thread_count();
  auto backend = make_cpu_backend(threads);
  auto m = load_model(a.model, *backend);
  if (!m) return fail(m.error());
  std::fprintf(stderr, "infera: compute backend %s, %d thread(s)\n", std::string(backend->name()).c_str(), threads);
  auto tok = Tokenizer::load(a.model);
  if (!tok) return fail(tok.error());
  server::ServeOptions o;
  o.model_path = a.model;
  o.served_names = a.served_names.empty() ? std::vector<std::string>{a.model} : a.served_names;
  o.api_keys = a.api_keys;
  o.reasoning_parser = a.reasoning_parser;
  o.enable_auto_tool_choice = a.enable_auto_tool_choice;
  o.tool_call_parser = a.tool_call_parser;
  if (o.api_keys.empty())
    for (const char* env : {"INFERA_API_KEY", "VLLM_API_KEY"})
      if (const char* k = std::getenv(env); k && *k) o.api_keys.push_back(k);
  if (!a.chat_template.empty()) {
    if (std::filesystem::exists(a.chat_template)) {
      auto t = read_text_file(a.chat_template);
      if (!t) return fail(t.error());
      o.chat_template = *t;
    } else {
      o.chat_template = a.chat_template;
    }
  }
  const ModelConfig& c = m->model->config();
  double n_params = 0;
  if (m->gguf)
    for (const GgufTensor& t : m->gguf->tensors()) n_params += static_cast<double>(t.view.n_elements());
  if (m->safetensors)
    for (const SafetensorsTensor& t : m->safetensors->tensors()) n_params += static_cast<double>(t.view.n_elements());
  o.max_model_len = a.max_model_len > 0 ? a.max_model_len : c.n_ctx_train;
  if (o.max_model_len > c.n_ctx_train)
    std::fprintf(stderr, "infera: warning: --max-model-len %lld exceeds the model's trained context %lld; outputs past it "
                 "may be poor\n", static_cast<long long>(o.max_model_len), static_cast<long long>(c.n_ctx_train));
  if (a.generation_config != "auto" && a.generation_config != "vllm")
    return fail("--generation-config must be auto or vllm");
  // Declared so that destruction runs server, API, then the engine (which cancels and joins its
  // work while the io_context its results are posted to still exists), and the io_context last.
  http::net::io_context io(1);
  GeneratorOptions go;
  go.max_model_len = o.max_model_len;
  go.kv_cache_bytes = static_cast<int64_t>(a.kv_cache_gb * (1 << 30));
  go.kv_type = *parse_kv_cache_dtype(a.kv_cache_dtype);
  go.block_size = a.block_size;
  go.max_num_batched_tokens = a.max_num_batched_tokens;
  go.max_num_seqs = a.max_num_seqs;
  go.prefix_caching = !a.no_prefix_caching;
  go.backend = backend.get();
  Result<KvPlan> plan = plan_kv_cache(c, go);
  if (!plan) return fail(plan.error());
  std::fprintf(stderr, "infera: KV cache: %lld blocks, %lld tokens (%s, %.2f GiB), max concurrency %.2fx at "
               "max-model-len %lld\n", static_cast<long long>(plan->num_blocks - 1), static_cast<long long>(plan->tokens),
               std::string(dtype_name(go.kv_type)).c_str(), static_cast<double>(plan->bytes) / (1 << 30),
               plan->max_concurrency, static_cast<long long>(go.max_model_len));
  Generator gen(*m->model, go);
  server::ApiServer api(o, *m, **tok, gen, read_defaults(*m, **tok, a.generation_config == "auto"));
  if (Status s = api.check(); !s) return fail(s.message());
  http::HttpOptions ho;
  ho.host = a.host;
  ho.port = static_cast<uint16_t>(a.port);
  ho.header_timeout = std::chrono::seconds(a.request_timeout_s);
  // Errors the HTTP layer answers itself (413, 431, malformed requests) in the API's error shape.
  ho.error_body = [](int status, const std::string& message, const http::HttpRequest&) {
    const char* type = status == 413 ? "Payload Too Large" : status == 431 ? "Request Header Fields Too Large" : "Bad Request";
    return server::error_body(server::ApiError(status, type, message));
  };
  http::HttpServer srv(io, ho, [&api](http::HttpRequest& r, http::HttpResponder& w) { return api.handle(r, w); });
  if (Status s = srv.bind(); !s) return fail(s.message());
  srv.start();
  const std::string size = n_params >= 1e9 ? fmt::format("{:.2f} B", n_params / 1e9) : fmt::format("{:.1f} M", n_params / 1e6);
  std::fprintf(stderr, "infera: serving %s (%s, %s parameters, max_model_len %lld) as '%s' on http://%s:%u\n",
               a.model.c_str(), c.arch.c_str(), size.c_str(), static_cast<long long>(o.max_model_len),
               o.served_names.front().c_str(), a.host.c_str(), srv.port());
  std::fflush(stderr);
  // Graceful stop on SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to
  // --drain-timeout, 30 s),
  // then end the rest with finish_reason "abort" (their clients get a whole answer or stream
  // ending: the final chunk and [DONE]) and give them up to 5 s to be written, exit 0.
  http::net::signal_set signals(io, SIGTERM, SIGINT);
  http::net::steady_timer drain(io);
  auto deadline = std::chrono::steady_clock::now();
  bool aborted = false;
  std::function<void()> wait_idle = [&] {
    const bool idle = gen.running() == 0 && api.in_flight() == 0;
    if (!idle && !aborted && std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "infera: drain time is up: aborting %lld request(s)\n", static_cast<long long>(gen.running()));
      gen.abort_all();
      aborted = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    if (idle || std::chrono::steady_clock::now() >= deadline) {
      io.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(50));
    drain.async_wait([&](const boost::system::error_code&) { wait_idle(); });
  };
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    std::fprintf(stderr, "infera: signal %d: no new connections; finishing %lld in-flight request(s)\n", sig,
                 static_cast<long long>(gen.running()));
    srv.stop();
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.drain_timeout_s);
    wait_idle();
  });
  io.run();
  std::fprintf(stderr, "infera: stopped\n");
  return 0;
}
}  // namespace

void add_serve(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand("serve", "Serve the OpenAI-compatible API (vLLM-compatible)");
  c->add_option("--model", a->model, "GGUF file or Hugging Face model folder")->required();
  c->add_option("--served-model-name", a->served_names, "name(s) the API answers to (default: --model)");
  c->add_option("--host", a->host, "address to bind")->capture_default_str();
  c->add_option("--port", a->port, "port (0: any free port)")->capture_default_str();
  c->add_option("--max-model-len", a->max_model_len, "context limit (default: the model's)");
  c->add_option("--api-key", a->api_keys, "require this bearer key on /v1 (also INFERA_API_KEY)");
  c->add_option("--chat-template", a->chat_template, "template file or string instead of the model's");
  c->add_option("--generation-config", a->generation_config, "auto: sampling defaults from the model; vllm: none")
      ->capture_default_str();
  c->add_option("--threads", a->threads, "compute threads (default: the physical cores)");
  c->add_option("--request-timeout", a->request_timeout_s, "seconds a client has to send a whole request")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  c->add_option("--reasoning-parser", a->reasoning_parser, "deepseek_r1: split <think> reasoning into reasoning_content");
  c->add_option("--drain-timeout", a->drain_timeout_s,
                "seconds SIGTERM waits for in-flight requests before ending them with finish_reason abort")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  c->add_flag("--enable-auto-tool-choice", a->enable_auto_tool_choice,
              "tool_choice \"auto\" (and tools without tool_choice): read tool calls out of the answers");
  c->add_option("--tool-call-parser", a->tool_call_parser,
                "the model's tool-call format: hermes (Qwen2.5, Hermes), llama3_json (Llama 3.1/3.2), deepseek_v3 (DeepSeek V3/R1)");
  c->add_option("--kv-cache-gb", a->kv_cache_gb, "KV cache size in GiB (default: min(4, 40% of available memory, 2 x max-num-seqs sequences of max-model-len))")
      ->check(CLI::Range(0.0, 4096.0));
  c->add_option("--kv-cache-dtype", a->kv_cache_dtype, "auto (f32), f16 or q8_0")
      ->capture_default_str()
      ->check([](const std::string& v) { return parse_kv_cache_dtype(v) ? std::string() : "expected auto, f32, f16 or q8_0"; });
  c->add_option("--block-size", a->block_size, "tokens per KV block")->capture_default_str()->check(CLI::Range(1, 1024));
  c->add_option("--max-num-batched-tokens", a->max_num_batched_tokens, "token budget of one engine step")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  c->add_option("--max-num-seqs", a->max_num_seqs, "most requests running at once")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{4096}));
  c->add_flag("--no-enable-prefix-caching", a->no_prefix_caching, "do not reuse the KV of shared prompt prefixes");
  c->callback([a, exit_code] { *exit_code = run_serve(*a); });
}

}  // namespace infera::cli
