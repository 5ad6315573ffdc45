// The OpenAI-compatible API (vLLM 0.10.2 shapes) over HttpServer and the engine's Generator.
// HTTP runs on one io_context thread; generation on the engine thread; token events cross over
// through a per-request mailbox. A client that goes away cancels its request.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "engine/generator.h"
#include "engine/regex_dfa.h"
#include "model/loader.h"
#include "server/api_types.h"
#include "server/tool_parsers.h"
#include "http/http_server.h"
#include "tokenizer/tokenizer.h"

namespace infera::server {

struct ServeOptions {
  std::string model_path;
  std::vector<std::string> served_names;  // first one is echoed in responses
  int64_t max_model_len = 0;               // 0: the model's context length
  std::vector<std::string> api_keys;
  std::string chat_template;  // override source (empty: the model's)
  bool generation_config_auto = true;
  std::string version = "0.10.2";
  std::string reasoning_parser;  // "" or "deepseek_r1"
  // --enable-auto-tool-choice / --tool-call-parser: tool_choice "auto" reads the model's own
  // tool-call text out of its answers (tool_parsers.h).
  bool enable_auto_tool_choice = false;
  std::string tool_call_parser;
};

class ApiServer {
 public:
  ApiServer(ServeOptions o, LoadedModel& model, const Tokenizer& tok, Generator& gen, GenerationDefaults defaults);
  // Checks start-up requirements (the reasoning parser needs <think> and </think> tokens).
  Status check() const;
  // Never throws: a JSON value of the wrong type becomes a 400, anything else a 500.
  http::net::awaitable<void> handle(http::HttpRequest& req, http::HttpResponder& out);

  // Prometheus histogram (cumulative buckets on output). Updated on the HTTP thread only.
  struct Histogram {
    std::vector<double> bounds;
    std::vector<int64_t> counts;  // per bucket, plus +Inf last
    double sum = 0;
    int64_t count = 0;
    explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
    void observe(double v);
  };
  struct Metrics {
    std::atomic<int64_t> prompt_tokens{0}, generation_tokens{0}, success_stop{0}, success_length{0},
        success_abort{0}, requests{0};
    Histogram ttft, e2e, itl, prompt_len, gen_len, params_n, params_max_tokens, queue, inference, prefill, decode,
        request_tpot, max_generation;
  };
  const Metrics& metrics() const { return metrics_; }
  // Requests generating (from submission until their answer or stream is written).
  int64_t in_flight() const { return in_flight_->load(); }

 private:
  http::net::awaitable<void> route(http::HttpRequest& req, http::HttpResponder& out);
  http::net::awaitable<void> chat(const OJson& body, const std::string& request_id_header, http::HttpResponder& out);
  http::net::awaitable<void> completions(const OJson& body, const std::string& request_id_header,
                                         http::HttpResponder& out);
  // One prompt of a request: its ids, the text echoed before its output, its generation cap.
  struct PromptIn {
    std::vector<int32_t> ids;
    std::string echo_text;
    int64_t max_tokens = 0;  // GenerationParams::max_tokens after the context check
  };
  http::net::awaitable<void> generate(bool is_chat, std::vector<PromptIn> prompts, CompletionParams p,
                                      std::string id, http::HttpResponder& out);
  // A regex or JSON-schema constraint's automaton: from the cache, or compiled on compile_pool_
  // (not the HTTP thread) when new; a 400 when the pattern cannot be compiled.
  http::net::awaitable<std::optional<ApiError>> compile_structured(CompletionParams& p);
  std::optional<ApiError> check_model(const OJson& body) const;
  void truncate_prompt(std::vector<int32_t>& ids, const CompletionParams& p) const;
  std::optional<ApiError> fit_context(int64_t n_prompt, CompletionParams& p, bool chat) const;
  // The engine-side checks vLLM makes after the context check (vocabulary-bound ids, log-prob counts).
  std::optional<ApiError> check_vocab(const CompletionParams& p) const;
  // Messages to the template's input: text content parts joined with "\n"; nullopt + error otherwise.
  std::optional<ApiError> chat_messages(const OJson& body, OJson& messages) const;
  // Logs vLLM's line for request fields the endpoint does not know.
  void log_ignored_fields(const OJson& body, bool is_chat) const;
  // Log-prob formatting (vLLM's shapes).
  std::string token_string(int32_t id, const CompletionParams& p) const;
  OJson chat_logprob(int32_t id, const TokenLogprob& lp, const CompletionParams& p) const;
  OJson completion_logprobs(std::span<const int32_t> ids, std::span<const TokenLogprob* const> lps,
                            const CompletionParams& p, int64_t offset) const;
  OJson prompt_logprobs_json(const std::vector<int32_t>& prompt, const std::vector<TokenLogprob>& lps) const;
  std::string metrics_text() const;

  ServeOptions o_;
  LoadedModel& model_;
  const Tokenizer& tok_;
  Generator& gen_;
  GenerationDefaults defaults_;
  int64_t max_model_len_;
  Metrics metrics_;
  // Shared with each request's guard: a coroutine destroyed after the server (at exit) still has it.
  std::shared_ptr<std::atomic<int64_t>> in_flight_ = std::make_shared<std::atomic<int64_t>>(0);
  int32_t think_start_ = -1, think_end_ = -1;  // <think>, </think> ids for the reasoning parser
  std::shared_ptr<const TokenBytes> vocab_;     // every id's bytes, for structured outputs
  // Sets p.gen.constraint from p.structured (for a reasoning chat, from after </think> on).
  void apply_structured(CompletionParams& p, bool is_chat) const;
  RegexCache regex_cache_;
  std::unique_ptr<ToolCallParser> tool_parser_;  // with --tool-call-parser
  http::net::thread_pool compile_pool_{1};  // last: joined first, while the rest is alive
};

// deepseek_r1 reasoning split of a whole output (non-streaming): {reasoning, content}; either may
// be null (nullopt).
struct ReasoningSplit {
  std::optional<std::string> reasoning, content;
};
ReasoningSplit split_reasoning(const std::string& text);

// JSON body of an error (compact).
std::string error_body(const ApiError& e);

}  // namespace infera::server
