#include "server/api_server.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <set>

#include <fmt/ranges.h>

#include "engine/chat_prompt.h"
#include "base/json_depth.h"

namespace infera::server {

namespace net = boost::asio;

std::string error_body(const ApiError& e) {
  OJson j = {{"error", {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", e.status}}}};
  return j.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

namespace {

std::string dump(const OJson& j) { return j.dump(-1, ' ', false, OJson::error_handler_t::replace); }

std::string random_hex32() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool constant_time_key_ok(const std::string& given, const std::vector<std::string>& keys) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  bool ok = false;
  for (const std::string& k : keys) {
    SHA256(reinterpret_cast<const unsigned char*>(k.data()), k.size(), b);
    ok |= CRYPTO_memcmp(a, b, sizeof a) == 0;
  }
  return ok;
}

bool is_json_content_type(const std::string& ct) {
  std::string media = ct.substr(0, ct.find(';'));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media == kJsonType;
}

}  // namespace

void ApiServer::Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

ApiServer::ApiServer(ServeOptions o, LoadedModel& model, const Tokenizer& tok, Generator& gen,
                     GenerationDefaults defaults)
    : o_(std::move(o)), model_(model), tok_(tok), gen_(gen), defaults_(std::move(defaults)) {
  if (!o_.tool_call_parser.empty()) tool_parser_ = make_tool_call_parser(o_.tool_call_parser);
  max_model_len_ = o_.max_model_len > 0 ? o_.max_model_len : model_.model->config().n_ctx_train;
  std::vector<double> lens;  // 1-2-5 buckets up to max_model_len
  for (double d = 1; d <= static_cast<double>(max_model_len_); d *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (d * m <= static_cast<double>(max_model_len_)) lens.push_back(d * m);
  metrics_.ttft = Histogram({.001, .005, .01, .02, .04, .06, .08, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560});
  metrics_.e2e = Histogram({.3, .5, .8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680});
  metrics_.itl = Histogram({.01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 2.5, 5, 7.5, 10, 20, 40, 80});
  metrics_.prompt_len = Histogram(lens);
  metrics_.gen_len = Histogram(lens);
  metrics_.params_max_tokens = Histogram(lens);
  metrics_.max_generation = Histogram(lens);
  metrics_.params_n = Histogram({1, 2, 5, 10, 20});
  metrics_.queue = metrics_.inference = metrics_.prefill = metrics_.decode = metrics_.e2e;
  metrics_.request_tpot = metrics_.itl;
  for (const AddedToken& a : tok_.added_tokens()) {
    if (a.content == "<think>") think_start_ = a.id;
    if (a.content == "</think>") think_end_ = a.id;
  }
  auto vocab = std::make_shared<TokenBytes>();
  const auto n_vocab = static_cast<size_t>(model_.model->config().n_vocab);
  vocab->bytes.resize(n_vocab);
  vocab->special.assign(n_vocab, false);
  for (size_t i = 0; i < n_vocab && i < tok_.vocab_size(); ++i) {
    vocab->bytes[i] = tok_.token_bytes(static_cast<int32_t>(i));
    vocab->special[i] = tok_.is_special(static_cast<int32_t>(i));
  }
  vocab->finalize();
  vocab_ = std::move(vocab);
}

net::awaitable<std::optional<ApiError>> ApiServer::compile_structured(CompletionParams& p) {
  if (p.structured != CompletionParams::Structured::kRegex || p.dfa) co_return std::nullopt;
  std::optional<Result<std::shared_ptr<const ByteDfa>>> r = regex_cache_.find(p.regex);
  if (!r) {  // new: compile on the pool, then come back to this thread
    auto home = co_await net::this_coro::executor;
    auto pool = compile_pool_.get_executor();
    co_await net::post(pool, net::use_awaitable);
    r = regex_cache_.get(p.regex);
    co_await net::post(home, net::use_awaitable);
  }
  if (!r->ok()) co_return ApiError{400, "BadRequestError", fmt::format("{}: {}", p.regex_source, r->error())};
  p.dfa = **r;
  co_return std::nullopt;
}

void ApiServer::apply_structured(CompletionParams& p, bool is_chat) const {
  const int32_t after = is_chat && o_.reasoning_parser == "deepseek_r1" ? think_end_ : -1;
  if (p.structured == CompletionParams::Structured::kJsonObject) p.gen.constraint = json_object_constraint(vocab_, after);
  if (p.structured == CompletionParams::Structured::kChoice) p.gen.constraint = choice_constraint(vocab_, p.choices, after);
  if (p.structured == CompletionParams::Structured::kRegex) p.gen.constraint = regex_constraint(vocab_, p.dfa, after);
}

Status ApiServer::check() const {
  if (o_.enable_auto_tool_choice && o_.tool_call_parser.empty())
    return error("--enable-auto-tool-choice requires --tool-call-parser");
  if (!o_.tool_call_parser.empty() && !tool_parser_)
    return error("invalid tool call parser: {} (chose from {{ {} }})", o_.tool_call_parser,
                 fmt::join(tool_call_parser_names(), ", "));
  if (o_.reasoning_parser.empty()) return Status::ok();
  if (o_.reasoning_parser != "deepseek_r1")
    return error("--reasoning-parser '{}' is not supported (supported: deepseek_r1)", o_.reasoning_parser);
  if (think_start_ < 0 || think_end_ < 0)
    return error("DeepSeek R1 reasoning parser could not locate think start/end tokens in the tokenizer!");
  return Status::ok();
}

ReasoningSplit split_reasoning(const std::string& text) {
  std::string t = text;
  // An opening tag counts only before the reasoning ends; after it, tags are content (e.g. text a
  // constraint wrote after </think>).
  const size_t end = t.find("</think>");
  if (const size_t s = t.find("<think>"); s != std::string::npos && s < end) t = t.substr(s + 7);
  const size_t e = t.find("</think>");
  if (e == std::string::npos) return {t, std::nullopt};
  std::string after = t.substr(e + 8);
  return {t.substr(0, e), after.empty() ? std::nullopt : std::optional<std::string>(after)};
}

std::optional<ApiError> ApiServer::check_model(const OJson& body) const {
  if (!body.contains("model") || body["model"].is_null()) return std::nullopt;
  if (!body["model"].is_string()) return ApiError{400, "Bad Request", "'model' must be a string"};
  const std::string m = body["model"].get<std::string>();
  if (m.empty()) return std::nullopt;
  for (const std::string& n : o_.served_names)
    if (n == m) return std::nullopt;
  return ApiError{404, "NotFoundError", fmt::format("The model `{}` does not exist.", m)};
}

void ApiServer::truncate_prompt(std::vector<int32_t>& ids, const CompletionParams& p) const {
  if (p.truncate_prompt_tokens == 0) return;
  const int64_t k = p.truncate_prompt_tokens == -1 ? max_model_len_ : p.truncate_prompt_tokens;
  if (static_cast<int64_t>(ids.size()) > k) ids.erase(ids.begin(), ids.end() - k);
}

std::optional<ApiError> ApiServer::fit_context(int64_t n, CompletionParams& p, bool chat) const {
  const int64_t L = max_model_len_;
  const std::string suffix = chat ? " None" : "";
  if (n >= L)
    return ApiError{400, "BadRequestError",
                    fmt::format("This model's maximum context length is {} tokens. However, your request has {} input "
                                "tokens. Please reduce the length of the input messages.{}",
                                L, n, suffix)};
  if (p.max_tokens && n + *p.max_tokens > L)
    return ApiError{400, "BadRequestError",
                    fmt::format("'max_tokens' or 'max_completion_tokens' is too large: {}. This model's maximum context "
                                "length is {} tokens and your request has {} input tokens ({} > {} - {}).{}",
                                *p.max_tokens, L, n, *p.max_tokens, L, n, suffix)};
  int64_t m = L - n;
  if (p.max_tokens) m = std::min(m, *p.max_tokens);
  if (defaults_.max_new_tokens) m = std::min(m, *defaults_.max_new_tokens);
  p.gen.max_tokens = m;
  return std::nullopt;
}

std::optional<ApiError> ApiServer::check_vocab(const CompletionParams& p) const {
  const int64_t V = model_.model->config().n_vocab;
  auto bad = [](std::string m) { return ApiError{400, "BadRequestError", std::move(m)}; };
  if (p.logprobs_all) return bad(fmt::format("Requested sample logprobs of {}, which is greater than max allowed: 20", V));
  if (p.prompt_logprobs_all) return bad(fmt::format("Requested prompt logprobs of {}, which is greater than max allowed: 20", V));
  if (p.gen.sampling.top_k > V)
    return bad(fmt::format("top_k cannot be greater than vocabulary size({}), but got {}.", V, p.gen.sampling.top_k));
  std::vector<std::string> invalid;
  for (const auto& [t, bias] : p.gen.logit_bias)
    if (t < 0 || t >= V) invalid.push_back(std::to_string(t));
  if (!invalid.empty())
    return bad(fmt::format("token_id(s) [{}] in logit_bias contain out-of-vocab token ids. Vocabulary size: {}",
                           fmt::join(invalid, ", "), V));
  const auto n_tok = static_cast<int32_t>(tok_.vocab_size());
  for (int32_t t : p.gen.allowed_token_ids)
    if (t < 0 || t >= n_tok) return bad("allowed_token_ids contains out-of-vocab token id!");
  return std::nullopt;
}

std::optional<ApiError> ApiServer::chat_messages(const OJson& body, OJson& messages) const {
  if (!body.contains("messages") || !body["messages"].is_array())
    return ApiError{400, "Bad Request", "'messages' is required and must be a list"};
  messages = OJson::array();
  for (const OJson& m : body["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return ApiError{400, "Bad Request", "each message needs a string 'role'"};
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
      return ApiError{400, "Bad Request", fmt::format("unknown message role '{}'", role)};
    OJson msg = m;
    if (!m.contains("content")) msg["content"] = nullptr;  // e.g. an assistant turn of tool_calls alone
    if (m.contains("content") && m["content"].is_array()) {  // text parts joined with "\n"
      std::string text;
      for (const OJson& part : m["content"]) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          return ApiError{400, "Bad Request", "only text content parts are supported"};
        text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
      }
      msg["content"] = text;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      return ApiError{400, "Bad Request", "message 'content' must be a string, a list of parts or null"};
    }
    messages.push_back(msg);
  }
  return std::nullopt;
}

void ApiServer::log_ignored_fields(const OJson& body, bool is_chat) const {
  // The request fields of vLLM's ChatCompletionRequest / CompletionRequest.
  static const std::set<std::string> kCommon = {
      "model", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "presence_penalty",
      "response_format", "seed", "stop", "stream", "stream_options", "temperature", "top_p", "user", "best_of",
      "use_beam_search", "top_k", "min_p", "repetition_penalty", "length_penalty", "stop_token_ids",
      "include_stop_str_in_output", "ignore_eos", "min_tokens", "skip_special_tokens",
      "spaces_between_special_tokens", "truncate_prompt_tokens", "prompt_logprobs", "allowed_token_ids",
      "echo", "add_special_tokens", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
      "structural_tag", "guided_decoding_backend", "guided_whitespace_pattern", "structured_outputs", "priority",
      "request_id", "logits_processors", "return_tokens_as_token_ids", "return_token_ids", "cache_salt",
      "kv_transfer_params", "vllm_xargs"};
  static const std::set<std::string> kChat = {
      "messages", "top_logprobs", "max_completion_tokens", "tools", "tool_choice", "reasoning_effort",
      "include_reasoning", "parallel_tool_calls", "bad_words", "add_generation_prompt", "continue_final_message",
      "documents", "chat_template", "chat_template_kwargs", "mm_processor_kwargs"};
  static const std::set<std::string> kCompletion = {"prompt", "suffix", "prompt_embeds"};
  std::vector<std::string> ignored;
  for (auto it = body.begin(); it != body.end(); ++it)
    if (!kCommon.contains(it.key()) && !(is_chat ? kChat : kCompletion).contains(it.key()))
      ignored.push_back("'" + it.key() + "'");
  if (!ignored.empty())
    fmt::print(stderr, "infera: The following fields were present in the request but ignored: {{{}}}\n",
               fmt::join(ignored, ", "));
}

net::awaitable<void> ApiServer::handle(http::HttpRequest& req, http::HttpResponder& out) {
  std::optional<ApiError> err;
  try {
    co_await route(req, out);
  } catch (const OJson::exception& e) {  // e.g. "add_generation_prompt": "yes"
    err = ApiError(400, "Bad Request", e.what());
  } catch (const std::exception& e) {
    err = ApiError(500, "Internal Server Error", e.what());
  }
  if (err) {
    fmt::print(stderr, "infera: {} {}: {}\n", req.method, req.target, err->message);
    if (!out.started()) {
      const std::string body = error_body(*err);
      co_await out.send(err->status, kJsonType, body);
    }
  }
}

net::awaitable<void> ApiServer::route(http::HttpRequest& req, http::HttpResponder& out) {
  auto send_error = [&](const ApiError& e) -> net::awaitable<void> {
    co_await out.send(e.status, kJsonType, error_body(e));
  };
  const std::string& path = req.target;
  if (path.starts_with("/v1") && req.method != "OPTIONS" && !o_.api_keys.empty()) {
    std::string auth = req.header("authorization");
    const bool bearer = auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ");
    if (!bearer || !constant_time_key_ok(auth.substr(7), o_.api_keys)) {
      co_await out.send(401, kJsonType, kUnauthorizedBody);
      co_return;
    }
  }
  if (req.method == "OPTIONS") {
    co_await out.send(200, kEmpty, kEmpty);
    co_return;
  }
  if (path == "/health" || path == "/ping") {
    co_await out.send(gen_.healthy() ? 200 : 503, kEmpty, kEmpty);
    co_return;
  }
  if (req.method == "GET" && path == "/version") {
    const std::string body = dump(OJson{{"version", o_.version}});
    co_await out.send(200, kJsonType, body);
    co_return;
  }
  if (req.method == "GET" && path == "/metrics") {
    co_await out.send(200, kPromType, metrics_text());
    co_return;
  }
  if (req.method == "GET" && path == "/v1/models") {
    OJson data = OJson::array();
    const int64_t now = unix_now();
    for (const std::string& n : o_.served_names) {
      OJson perm = {{"id", "modelperm-" + random_hex32()}, {"object", "model_permission"}, {"created", now},
                    {"allow_create_engine", false}, {"allow_sampling", true}, {"allow_logprobs", true},
                    {"allow_search_indices", false}, {"allow_view", true}, {"allow_fine_tuning", false},
                    {"organization", "*"}, {"group", nullptr}, {"is_blocking", false}};
      data.push_back({{"id", n}, {"object", "model"}, {"created", now}, {"owned_by", "vllm"}, {"root", o_.model_path},
                      {"parent", nullptr}, {"max_model_len", max_model_len_}, {"permission", OJson::array({perm})}});
    }
    const std::string body = dump(OJson{{"object", "list"}, {"data", data}});
    co_await out.send(200, kJsonType, body);
    co_return;
  }
  const bool known_post = path == "/v1/chat/completions" || path == "/v1/completions" || path == "/tokenize" ||
                          path == "/detokenize";
  if (!known_post) {
    co_await send_error(ApiError{404, "Not Found", "Not Found"});
    co_return;
  }
  if (req.method != "POST") {
    co_await send_error(ApiError{405, "Method Not Allowed", "Method Not Allowed"});
    co_return;
  }
  if (!is_json_content_type(req.header("content-type"))) {
    co_await send_error(ApiError{400, "Bad Request", "[\"Unsupported Media Type: Only 'application/json' is allowed\"]"});
    co_return;
  }
  OJson body;
  std::string parse_error;
  try {
    if (json_nesting_depth(req.body) > kMaxRequestJsonDepth)
      throw std::invalid_argument(fmt::format("arrays and objects nest deeper than {} levels", kMaxRequestJsonDepth));
    body = OJson::parse(req.body);
  } catch (const std::exception& e) {
    parse_error = std::string("There was an error parsing the body: ") + e.what();
  }
  if (parse_error.empty() && !body.is_object()) parse_error = "The request body must be a JSON object";
  if (!parse_error.empty()) {
    co_await send_error(ApiError{400, "Bad Request", parse_error});
    co_return;
  }
  if (auto e = check_model(body)) {
    co_await send_error(*e);
    co_return;
  }
  ++metrics_.requests;
  if (path == "/v1/chat/completions") {
    co_await chat(body, req.header("x-request-id"), out);
  } else if (path == "/v1/completions") {
    co_await completions(body, req.header("x-request-id"), out);
  } else if (path == "/tokenize") {
    std::vector<int32_t> ids;
    if (body.contains("messages")) {
      ChatRequest cr;
      if (auto e = chat_messages(body, cr.messages)) {
        co_await send_error(*e);
        co_return;
      }
      cr.add_generation_prompt = body.value("add_generation_prompt", true);
      if (body.contains("tools")) cr.tools = body["tools"];
      if (body.contains("chat_template_kwargs") && body["chat_template_kwargs"].is_object()) cr.kwargs = body["chat_template_kwargs"];
      auto text = render_chat_prompt(tok_, cr, o_.chat_template);
      if (!text) {
        co_await send_error(ApiError{400, "BadRequestError", text.error()});
        co_return;
      }
      ids = tok_.encode(*text, {body.value("add_special_tokens", false), SpecialTokens::kAll});
    } else if (body.contains("prompt") && body["prompt"].is_string()) {
      ids = tok_.encode(body["prompt"].get<std::string>(), {body.value("add_special_tokens", true), SpecialTokens::kAll});
    } else {
      co_await send_error(ApiError{400, "Bad Request", "either 'prompt' (string) or 'messages' is required"});
      co_return;
    }
    OJson strs = nullptr;
    if (body.value("return_token_strs", false)) {
      strs = OJson::array();
      for (int32_t id : ids) strs.push_back(tok_.token_text(id));
    }
    const std::string resp = dump(OJson{{"count", ids.size()}, {"max_model_len", max_model_len_}, {"tokens", ids}, {"token_strs", strs}});
    co_await out.send(200, kJsonType, resp);
  } else {  // /detokenize
    if (!body.contains("tokens") || !body["tokens"].is_array()) {
      co_await send_error(ApiError{400, "Bad Request", "'tokens' must be a list of token ids"});
      co_return;
    }
    std::vector<int32_t> ids;
    for (const OJson& t : body["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= static_cast<int64_t>(tok_.vocab_size())) {
        co_await send_error(ApiError{400, "BadRequestError", fmt::format("token id {} is out of vocabulary", t.dump())});
        co_return;
      }
      ids.push_back(t.get<int32_t>());
    }
    const std::string resp = dump(OJson{{"prompt", tok_.decode(ids, false)}});
    co_await out.send(200, kJsonType, resp);
  }
}

net::awaitable<void> ApiServer::chat(const OJson& body, const std::string& rid_header, http::HttpResponder& out) {
  auto fail = [&](ApiError e) -> net::awaitable<void> { co_await out.send(e.status, kJsonType, error_body(e)); };
  if (!body.contains("messages") || !body["messages"].is_array()) {
    co_await fail(ApiError{400, "Bad Request", "'messages' is required and must be a list"});
    co_return;
  }
  ChatRequest cr;
  if (auto e = chat_messages(body, cr.messages)) {
    co_await fail(*e);
    co_return;
  }
  cr.add_generation_prompt = body.value("add_generation_prompt", true);
  const bool continue_final = body.value("continue_final_message", false);
  if (continue_final && cr.add_generation_prompt) {
    co_await fail(ApiError{400, "BadRequestError",
                           "Cannot set both `continue_final_message` and `add_generation_prompt` to True."});
    co_return;
  }
  // tools and tool_choice are checked with the sampling fields (parse_common); the template sees the tools.
  if (body.contains("tools") && body["tools"].is_array()) cr.tools = body["tools"];
  if (body.contains("chat_template_kwargs") && body["chat_template_kwargs"].is_object()) cr.kwargs = body["chat_template_kwargs"];
  if (body.contains("chat_template") && !body["chat_template"].is_null()) {
    co_await fail(ApiError{400, "BadRequestError",
                           "Chat template is passed with request, but --trust-request-chat-template is not set. Refused "
                           "request with untrusted chat template."});
    co_return;
  }
  CompletionParams p;
  if (auto e = parse_common(body, defaults_, true, p, o_.enable_auto_tool_choice && tool_parser_)) {
    co_await fail(*e);
    co_return;
  }
  std::optional<ApiError> compiled = co_await compile_structured(p);
  if (compiled) {
    co_await fail(*compiled);
    co_return;
  }
  // vLLM's hermes parser reads <tool_call> tags that some tokenizers mark special: keep them.
  if (p.tool_choice.kind == ToolChoice::Kind::kAuto && o_.tool_call_parser == "hermes") p.skip_special_tokens = false;
  auto text = render_chat_prompt(tok_, cr, o_.chat_template);
  if (!text) {
    co_await fail(ApiError{400, "BadRequestError", text.error()});
    co_return;
  }
  std::string prompt_text = *text;
  if (continue_final && !cr.messages.empty()) {  // leave the final message open
    const OJson& last = cr.messages.back();
    if (last.contains("content") && last["content"].is_string()) {
      const std::string c = last["content"].get<std::string>();
      const size_t at = prompt_text.rfind(c);
      if (at != std::string::npos) prompt_text = prompt_text.substr(0, at + c.size());
    }
  }
  std::vector<int32_t> ids = tok_.encode(prompt_text, {body.value("add_special_tokens", false), SpecialTokens::kAll});
  truncate_prompt(ids, p);
  if (auto e = fit_context(static_cast<int64_t>(ids.size()), p, true)) {
    co_await fail(*e);
    co_return;
  }
  if (auto e = check_vocab(p)) {
    co_await fail(*e);
    co_return;
  }
  // bad_words as vLLM tokenizes them: each word as written (leading spaces stripped) and, when that
  // makes a different first token of the same length, with one leading space.
  for (const std::string& w : p.bad_words) {
    const std::string bare = w.substr(std::min(w.find_first_not_of(' '), w.size()));
    const std::vector<int32_t> plain = tok_.encode(bare, {false, SpecialTokens::kAll});
    const std::vector<int32_t> spaced = tok_.encode(" " + bare, {false, SpecialTokens::kAll});
    if (!plain.empty()) p.gen.bad_words_ids.push_back(plain);
    if (!spaced.empty() && !plain.empty() && spaced[0] != plain[0] && spaced.size() == plain.size())
      p.gen.bad_words_ids.push_back(spaced);
  }
  apply_structured(p, true);
  std::vector<PromptIn> prompts(1);
  if (p.echo && !cr.messages.empty() && cr.messages.back().value("role", "") == "assistant" &&
      cr.messages.back().contains("content") && cr.messages.back()["content"].is_string())
    prompts[0].echo_text = cr.messages.back()["content"].get<std::string>();
  prompts[0].ids = std::move(ids);
  prompts[0].max_tokens = p.gen.max_tokens;
  log_ignored_fields(body, true);
  const std::string id = "chatcmpl-" + (!rid_header.empty() ? rid_header : !p.request_id.empty() ? p.request_id : random_hex32());
  co_await generate(true, std::move(prompts), std::move(p), id, out);
}

net::awaitable<void> ApiServer::completions(const OJson& body, const std::string& rid_header, http::HttpResponder& out) {
  auto fail = [&](ApiError e) -> net::awaitable<void> { co_await out.send(e.status, kJsonType, error_body(e)); };
  if (body.contains("suffix") && !body["suffix"].is_null()) {
    co_await fail(ApiError{400, "BadRequestError", "suffix is not currently supported"});
    co_return;
  }
  if (!body.contains("prompt")) {
    co_await fail(ApiError{400, "Bad Request", "'prompt' is required"});
    co_return;
  }
  // A string, a list of token ids, or a batch: a list of strings or of token-id lists.
  const OJson& pr = body["prompt"];
  const bool add_special = body.value("add_special_tokens", true);
  std::vector<PromptIn> prompts;
  std::vector<std::string> texts;
  const int64_t n_vocab = model_.model->config().n_vocab;
  auto token_list = [&](const OJson& list) -> std::optional<ApiError> {
    PromptIn in;
    for (const OJson& t : list) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
        return ApiError{400, "BadRequestError", fmt::format("Token id {} is out of vocabulary", t.dump())};
      in.ids.push_back(t.get<int32_t>());
    }
    texts.push_back(tok_.decode(in.ids, false));
    prompts.push_back(std::move(in));
    return std::nullopt;
  };
  auto text_prompt = [&](const std::string& t) {
    PromptIn in;
    in.ids = tok_.encode(t, {add_special, SpecialTokens::kAll});
    texts.push_back(t);
    prompts.push_back(std::move(in));
  };
  std::optional<ApiError> err;
  if (pr.is_string()) {
    text_prompt(pr.get<std::string>());
  } else if (pr.is_array() && !pr.empty() && pr[0].is_number_integer()) {
    err = token_list(pr);
  } else if (pr.is_array() && !pr.empty() && std::all_of(pr.begin(), pr.end(), [](const OJson& x) { return x.is_string(); })) {
    for (const OJson& x : pr) text_prompt(x.get<std::string>());
  } else if (pr.is_array() && !pr.empty() && std::all_of(pr.begin(), pr.end(), [](const OJson& x) { return x.is_array(); })) {
    for (const OJson& x : pr)
      if (!err) err = token_list(x);
  } else {
    err = ApiError{400, "Bad Request",
                   "'prompt' must be a string, a list of strings, a list of token ids or a list of token-id lists"};
  }
  if (err) {
    co_await fail(*err);
    co_return;
  }
  CompletionParams p;
  if (auto e = parse_common(body, defaults_, false, p)) {
    co_await fail(*e);
    co_return;
  }
  if (static_cast<int64_t>(prompts.size()) * p.n > kMaxSequencesPerRequest) {
    const std::string m = fmt::format("a request may run at most {} sequences (prompts x n), got {} x {}",
                                      kMaxSequencesPerRequest, prompts.size(), p.n);
    co_await fail(ApiError{400, "BadRequestError", m});
    co_return;
  }
  std::optional<ApiError> compiled = co_await compile_structured(p);
  if (compiled) {
    co_await fail(*compiled);
    co_return;
  }
  for (size_t k = 0; k < prompts.size(); ++k) {
    if (prompts[k].ids.empty()) {
      co_await fail(ApiError{400, "BadRequestError", "The prompt cannot be empty"});
      co_return;
    }
    truncate_prompt(prompts[k].ids, p);
    if (auto e = fit_context(static_cast<int64_t>(prompts[k].ids.size()), p, false)) {
      co_await fail(*e);
      co_return;
    }
    prompts[k].max_tokens = p.gen.max_tokens;
    if (p.echo) prompts[k].echo_text = texts[k];
  }
  if (auto e = check_vocab(p)) {
    co_await fail(*e);
    co_return;
  }
  log_ignored_fields(body, false);
  apply_structured(p, false);
  const std::string id = "cmpl-" + (!rid_header.empty() ? rid_header : !p.request_id.empty() ? p.request_id : random_hex32());
  co_await generate(false, std::move(prompts), std::move(p), id, out);
}

std::string ApiServer::metrics_text() const {
  const std::string labels = fmt::format("model_name=\"{}\",engine=\"0\"", o_.served_names.front());
  std::string t;
  auto gauge = [&](const char* name, const char* help, double v) {
    t += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0}{{{2}}} {3}\n", name, help, labels, py_float(v));
  };
  auto counter = [&](const char* name, const char* help, double v) {
    t += fmt::format("# HELP {0}_total {1}\n# TYPE {0}_total counter\n{0}_total{{{2}}} {3}\n", name, help, labels,
                     py_float(v));
  };
  const GeneratorStats& st = gen_.stats();
  gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
        static_cast<double>(st.running.load()));
  gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", static_cast<double>(st.waiting.load()));
  gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", st.kv_usage.load());
  counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
          static_cast<double>(st.preemptions.load()));
  counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
          static_cast<double>(st.prefix_queries.load()));
  counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
          static_cast<double>(st.prefix_hits.load()));
  counter("vllm:prompt_tokens", "Number of prefill tokens processed.", static_cast<double>(metrics_.prompt_tokens));
  counter("vllm:generation_tokens", "Number of generation tokens processed.", static_cast<double>(metrics_.generation_tokens));
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    t += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
    int64_t cum = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cum += h.counts[i];
      t += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, py_float(h.bounds[i]), py_float(static_cast<double>(cum)));
    }
    cum += h.counts.back();
    t += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, py_float(static_cast<double>(cum)));
    t += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, py_float(h.sum), name, labels,
                     py_float(static_cast<double>(h.count)));
  };
  histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", metrics_.ttft);
  histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", metrics_.e2e);
  histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", metrics_.itl);
  histogram("vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.DEPRECATED: Use vllm:inter_token_latency_seconds instead.",
            metrics_.itl);
  histogram("vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request.",
            metrics_.request_tpot);
  histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", metrics_.queue);
  histogram("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.",
            metrics_.inference);
  histogram("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", metrics_.prefill);
  histogram("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", metrics_.decode);
  histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", metrics_.prompt_len);
  histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", metrics_.gen_len);
  histogram("vllm:request_max_num_generation_tokens", "Histogram of maximum number of requested generation tokens.",
            metrics_.max_generation);
  histogram("vllm:request_params_n", "Histogram of the n request parameter.", metrics_.params_n);
  histogram("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", metrics_.params_max_tokens);
  {  // tokens per engine step, counted by the engine thread
    Histogram it;
    for (int64_t b : GeneratorStats::kIterationBuckets) it.bounds.push_back(static_cast<double>(b));
    it.counts.clear();
    for (const auto& c : st.iteration_counts) it.counts.push_back(c.load());
    it.count = st.steps.load();
    it.sum = static_cast<double>(st.iteration_tokens.load());
    histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", it);
  }
  const GeneratorOptions& go = gen_.options();
  t += fmt::format(
      "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\n"
      "vllm:cache_config_info{{block_size=\"{}\",cache_dtype=\"{}\",enable_prefix_caching=\"{}\",engine=\"0\","
      "num_cpu_blocks=\"None\",num_gpu_blocks=\"{}\"}} 1.0\n",
      go.block_size, go.kv_type == DType::F32 ? "auto" : go.kv_type == DType::F16 ? "float16" : "q8_0",
      go.prefix_caching ? "True" : "False", gen_.kv_plan().num_blocks - 1);
  t += fmt::format(
      "# HELP vllm:lora_requests_info Running stats on lora requests.\n# TYPE vllm:lora_requests_info gauge\n"
      "vllm:lora_requests_info{{max_lora=\"0\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"}} {}\n",
      py_float(static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch()).count()) / 1000.0));
  t += "# HELP vllm:request_success_total Count of successfully processed requests.\n"
       "# TYPE vllm:request_success_total counter\n";
  for (auto [reason, v] : {std::pair{"stop", &metrics_.success_stop}, std::pair{"length", &metrics_.success_length},
                           std::pair{"abort", &metrics_.success_abort}})
    t += fmt::format("vllm:request_success_total{{finished_reason=\"{}\",{}}} {}\n", reason, labels,
                     py_float(static_cast<double>(v->load())));
  return t;
}

}  // namespace infera::server
