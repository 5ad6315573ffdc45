// Running one completion request on the engine and answering it: JSON, or SSE chunks in vLLM's
// shapes (role chunk, content chunks, final chunk, usage chunk, [DONE]).
#include <boost/asio/experimental/as_tuple.hpp>
#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>

#include "server/api_server.h"
#include "tokenizer/unicode.h"

namespace infera::server {

namespace net = boost::asio;

namespace {

std::string dump(const OJson& j) { return j.dump(-1, ' ', false, OJson::error_handler_t::replace); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Events from the engine thread to the request's coroutine (HTTP runs on one thread: a posted
// wake-up lands while the coroutine waits, or before it looks at the queue again).
class Mailbox : public std::enable_shared_from_this<Mailbox> {
 public:
  explicit Mailbox(net::any_io_executor ex) : timer_(ex) {}
  void push(const GenEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.push_back(e);
    }
    net::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }
  // Next event, or nullopt after `poll` without one (so the caller can check the client).
  net::awaitable<std::optional<GenEvent>> pop(std::chrono::milliseconds poll) {
    if (auto e = try_pop()) co_return e;
    timer_.expires_after(poll);
    auto [ec] = co_await timer_.async_wait(net::experimental::as_tuple(net::use_awaitable));
    (void)ec;
    co_return try_pop();
  }

 private:
  std::optional<GenEvent> try_pop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (q_.empty()) return std::nullopt;
    GenEvent e = std::move(q_.front());
    q_.pop_front();
    return e;
  }
  std::mutex mu_;
  std::deque<GenEvent> q_;
  net::steady_timer timer_;
};

std::vector<int> utf8_bytes(const std::string& s) {
  std::vector<int> out;
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
  return out;
}

struct ChoiceResult {
  std::string text;
  std::vector<int32_t> token_ids;
  std::string finish_reason;
  OJson stop_reason = nullptr;
  int64_t completion_tokens = 0;
  OJson chat_logprobs = OJson::array();  // chat: content entries
  OJson tokens = OJson::array(), token_logprobs = OJson::array(), top_logprobs = OJson::array(),
        text_offset = OJson::array();  // completions
  int64_t offset = 0;
};

}  // namespace

net::awaitable<void> ApiServer::generate(bool is_chat, std::vector<int32_t> prompt, CompletionParams p, std::string id,
                                         std::string echo_text, http::HttpResponder& out) {
  const int64_t created = unix_now();
  const std::string& model_name = o_.served_names.front();
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const char* object = is_chat ? "chat.completion.chunk" : "text_completion";
  auto chunk_head = [&] { return OJson{{"id", id}, {"object", object}, {"created", created}, {"model", model_name}}; };
  auto sse = [&](const OJson& j) -> net::awaitable<bool> { co_return co_await out.write("data: " + dump(j) + "\n\n"); };
  const auto t0 = std::chrono::steady_clock::now();
  const bool reasoning = is_chat && o_.reasoning_parser == "deepseek_r1";

  if (p.stream && !co_await out.begin_stream(kSseType)) co_return;
  std::vector<ChoiceResult> results(static_cast<size_t>(p.n));
  bool client_gone = false;
  int64_t total_completion = 0;
  std::optional<double> ttft;
  auto last_token = std::chrono::steady_clock::now();
  // Across all n choices: each may take less than the check interval.
  auto last_check = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < p.n && !client_gone; ++i) {
    ChoiceResult& r = results[static_cast<size_t>(i)];
    GenerationParams gp = p.gen;
    if (gp.has_seed) gp.sampling.seed += static_cast<uint64_t>(i);
    auto mailbox = std::make_shared<Mailbox>(co_await net::this_coro::executor);
    auto job = gen_.submit(prompt, gp, [mailbox](const GenEvent& e) { mailbox->push(e); });
    TextAssembler text(tok_, p);
    if (p.stream) {  // role chunk (chat) / echo
      if (is_chat) {
        OJson c = chunk_head();
        c["choices"] = OJson::array({OJson{{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                           {"logprobs", nullptr}, {"finish_reason", nullptr}}});
        c["prompt_token_ids"] = p.return_token_ids ? OJson(prompt) : OJson(nullptr);
        if (!co_await sse(c)) client_gone = true;
        if (!echo_text.empty() && !client_gone) {
          OJson e = chunk_head();
          e["choices"] = OJson::array({OJson{{"index", i}, {"delta", {{"content", echo_text}}}, {"logprobs", nullptr},
                                             {"finish_reason", nullptr}}});
          if (!co_await sse(e)) client_gone = true;
        }
      }
    }
    bool first_chunk = true;
    for (bool finished = false; !finished;) {
      std::optional<GenEvent> ev = co_await mailbox->pop(std::chrono::milliseconds(100));
      // A non-streaming client only shows it left through its socket: look every 100 ms.
      if (!client_gone && std::chrono::steady_clock::now() - last_check > std::chrono::milliseconds(100)) {
        last_check = std::chrono::steady_clock::now();
        if (out.peer_closed()) {
          job->cancel();
          client_gone = true;
        }
      }
      if (!ev) continue;
      if (!ev->error.empty()) {
        const ApiError e{500, "Internal Server Error", ev->error};
        if (p.stream) {
          co_await out.write("data: " + fmt::format("{{\"error\": {{\"message\": {}, \"type\": \"{}\", \"param\": null, \"code\": {}}}}}",
                                                    OJson(e.message).dump(), e.type, e.status) + "\n\ndata: [DONE]\n\n");
          co_await out.end_stream();
        } else {
          co_await out.send(500, kJsonType, error_body(e));
        }
        co_return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!ev->tokens.empty()) {
        if (!ttft) {
          ttft = std::chrono::duration<double>(now - t0).count();
        } else {
          metrics_.itl.observe(std::chrono::duration<double>(now - last_token).count());
        }
        last_token = now;
      }
      std::vector<int32_t> step_ids;
      for (int32_t t : ev->tokens) {
        ++r.completion_tokens;
        r.token_ids.push_back(t);
        step_ids.push_back(t);
        if (t != ev->stop_token) text.push(t);  // a stop token is never text
      }
      OJson step_chat_lp = OJson::array();
      OJson step_tokens = OJson::array(), step_token_lp = OJson::array(), step_top = OJson::array(),
            step_offsets = OJson::array();
      for (size_t k = 0; k < ev->logprobs.size() && k < ev->tokens.size(); ++k) {
        const TokenLogprob& lp = ev->logprobs[k];
        const std::string t = tok::sanitize_utf8(tok_.token_bytes(ev->tokens[k]));
        if (is_chat) {
          OJson top = OJson::array();
          for (const auto& [id, v] : lp.top) {
            const std::string tt = tok::sanitize_utf8(tok_.token_bytes(id));
            top.push_back({{"token", tt}, {"logprob", v}, {"bytes", utf8_bytes(tt)}});
          }
          step_chat_lp.push_back({{"token", t}, {"logprob", lp.logprob}, {"bytes", utf8_bytes(t)}, {"top_logprobs", top}});
        } else {
          OJson top = OJson::object();
          top[t] = lp.logprob;
          for (const auto& [id, v] : lp.top) top[tok::sanitize_utf8(tok_.token_bytes(id))] = v;
          step_tokens.push_back(t);
          step_token_lp.push_back(lp.logprob);
          step_top.push_back(top);
          step_offsets.push_back(r.offset);
          r.offset += static_cast<int64_t>(t.size());
        }
      }
      for (auto& x : step_chat_lp) r.chat_logprobs.push_back(x);
      for (size_t k = 0; k < step_tokens.size(); ++k) {
        r.tokens.push_back(step_tokens[k]);
        r.token_logprobs.push_back(step_token_lp[k]);
        r.top_logprobs.push_back(step_top[k]);
        r.text_offset.push_back(step_offsets[k]);
      }
      const bool with_lp = p.gen.logprobs >= 0;
      const OJson chunk_lp = !with_lp ? OJson(nullptr)
                             : is_chat ? OJson{{"content", step_chat_lp}}
                                       : OJson{{"text_offset", step_offsets}, {"token_logprobs", step_token_lp},
                                               {"tokens", step_tokens}, {"top_logprobs", step_top}};
      finished = ev->finished;
      if (finished) {
        r.finish_reason = ev->finish_reason;
        if (ev->stop_token >= 0 && !ev->stop_token_is_eos) r.stop_reason = ev->stop_token;
      }
      std::string delta = text.take(finished);
      if (text.stopped() && !finished) {  // stop string: end here, the engine stops too
        job->cancel();
        finished = true;
        r.finish_reason = "stop";
      }
      if (text.stopped()) r.stop_reason = text.stop_string();
      r.text += delta;
      if (client_gone) break;
      if (p.stream) {
        OJson c = chunk_head();
        OJson choice;
        if (is_chat) {
          OJson d = OJson::object();
          if (reasoning) {
            std::vector<int32_t> prev(r.token_ids.begin(), r.token_ids.end() - static_cast<std::ptrdiff_t>(step_ids.size()));
            auto has = [](const std::vector<int32_t>& v, int32_t t) { return std::find(v.begin(), v.end(), t) != v.end(); };
            const bool only_tag = step_ids.size() == 1 && (step_ids[0] == think_start_ || step_ids[0] == think_end_);
            if (only_tag) {
              if (!finished) continue;  // the tag alone sends no chunk
            } else {
              const bool start_now = !has(prev, think_start_) && has(step_ids, think_start_);
              std::string body = delta;
              if (start_now) {
                const size_t s0 = body.find("<think>");
                if (s0 != std::string::npos) body = body.substr(s0 + 7);
              }
              if (has(step_ids, think_end_)) {
                const size_t e = body.find("</think>");
                const std::string before = e == std::string::npos ? body : body.substr(0, e);
                const std::string after = e == std::string::npos ? std::string() : body.substr(e + 8);
                d["content"] = after.empty() ? OJson(nullptr) : OJson(after);
                d["reasoning_content"] = before;
              } else if (has(prev, think_end_)) {
                d["content"] = delta;
              } else {
                d["reasoning_content"] = body;
              }
              if (!p.include_reasoning && d.contains("reasoning_content")) {
                d.erase("reasoning_content");
                if (d.empty() && !finished) continue;
              }
            }
          } else {
            d["content"] = delta;
          }
          choice = {{"index", i}, {"delta", d}, {"logprobs", chunk_lp},
                    {"finish_reason", finished ? OJson(r.finish_reason) : OJson(nullptr)}};
          if (finished) choice["stop_reason"] = r.stop_reason;
          choice["token_ids"] = p.return_token_ids ? OJson(step_ids) : OJson(nullptr);
        } else {
          const std::string t = first_chunk && !echo_text.empty() ? echo_text + delta : delta;
          choice = {{"index", i}, {"text", t}, {"logprobs", chunk_lp},
                    {"finish_reason", finished ? OJson(r.finish_reason) : OJson(nullptr)},
                    {"stop_reason", finished ? r.stop_reason : OJson(nullptr)},
                    {"prompt_token_ids", first_chunk ? OJson(prompt) : OJson(nullptr)},
                    {"token_ids", p.return_token_ids ? OJson(step_ids) : OJson(nullptr)}};
        }
        first_chunk = false;
        c["choices"] = OJson::array({choice});
        if (p.continuous_usage) {
          c["usage"] = {{"prompt_tokens", n_prompt}, {"total_tokens", n_prompt + r.completion_tokens},
                        {"completion_tokens", r.completion_tokens}};
        } else if (!is_chat) {
          c["usage"] = nullptr;
        }
        if (!co_await sse(c)) {
          job->cancel();
          client_gone = true;
        }
      }
    }
    total_completion += r.completion_tokens;
    metrics_.gen_len.observe(static_cast<double>(r.completion_tokens));
    metrics_.generation_tokens += r.completion_tokens;
    auto& counter = client_gone || r.finish_reason == "abort" ? metrics_.success_abort
                    : r.finish_reason == "length"            ? metrics_.success_length
                                                             : metrics_.success_stop;
    ++counter;
  }
  metrics_.prompt_tokens += n_prompt;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.prompt_len.observe(static_cast<double>(n_prompt));
  metrics_.params_n.observe(static_cast<double>(p.n));
  metrics_.params_max_tokens.observe(static_cast<double>(p.gen.max_tokens));
  metrics_.e2e.observe(secs);
  if (ttft) metrics_.ttft.observe(*ttft);
  fmt::print(stderr, "infera: {} prompt_tokens={} completion_tokens={} ttft={:.3f}s time={:.3f}s status={}\n", id,
             n_prompt, total_completion, ttft.value_or(0.0), secs, client_gone ? "aborted" : "ok");
  if (client_gone) co_return;

  const OJson usage = {{"prompt_tokens", n_prompt}, {"total_tokens", n_prompt + total_completion},
                       {"completion_tokens", total_completion}};
  if (p.stream) {
    if (p.include_usage) {
      OJson c = chunk_head();
      c["choices"] = OJson::array();
      c["usage"] = usage;
      co_await sse(c);
    }
    co_await out.write(kDone);
    co_await out.end_stream();
    co_return;
  }
  OJson choices = OJson::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const ChoiceResult& r = results[i];
    if (is_chat) {
      OJson content = echo_text + r.text, reasoning_content = nullptr;
      if (reasoning) {
        const ReasoningSplit sp = split_reasoning(r.text);
        content = sp.content ? OJson(echo_text + *sp.content) : OJson(nullptr);
        if (p.include_reasoning && sp.reasoning) reasoning_content = *sp.reasoning;
      }
      choices.push_back({{"index", i},
                         {"message", {{"role", "assistant"}, {"content", content}, {"refusal", nullptr},
                                      {"annotations", nullptr}, {"audio", nullptr}, {"function_call", nullptr},
                                      {"tool_calls", OJson::array()}, {"reasoning_content", reasoning_content}}},
                         {"logprobs", p.gen.logprobs >= 0 ? OJson{{"content", r.chat_logprobs}} : OJson(nullptr)}, {"finish_reason", r.finish_reason}, {"stop_reason", r.stop_reason},
                         {"token_ids", p.return_token_ids ? OJson(r.token_ids) : OJson(nullptr)}});
    } else {
      const OJson lp = p.gen.logprobs < 0 ? OJson(nullptr)
                                          : OJson{{"text_offset", r.text_offset}, {"token_logprobs", r.token_logprobs},
                                                  {"tokens", r.tokens}, {"top_logprobs", r.top_logprobs}};
      choices.push_back({{"index", i}, {"text", echo_text + r.text}, {"logprobs", lp},
                         {"finish_reason", r.finish_reason}, {"stop_reason", r.stop_reason},
                         {"token_ids", p.return_token_ids ? OJson(r.token_ids) : OJson(nullptr)},
                         {"prompt_logprobs", nullptr},
                         {"prompt_token_ids", p.return_token_ids ? OJson(prompt) : OJson(nullptr)}});
    }
  }
  OJson full_usage = usage;
  full_usage["prompt_tokens_details"] = nullptr;
  OJson resp = {{"id", id}, {"object", is_chat ? "chat.completion" : "text_completion"}, {"created", created},
                {"model", model_name}, {"choices", choices}, {"service_tier", nullptr},
                {"system_fingerprint", nullptr}, {"usage", full_usage}};
  if (is_chat) {
    resp["prompt_logprobs"] = nullptr;
    resp["prompt_token_ids"] = p.return_token_ids ? OJson(prompt) : OJson(nullptr);
  }
  resp["kv_transfer_params"] = nullptr;
  co_await out.send(200, kJsonType, dump(resp));
}

}  // namespace infera::server
