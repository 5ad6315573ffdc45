// Running one completion request on the engine and answering it: JSON, or SSE chunks in vLLM's
// shapes (role chunk, content chunks, final chunk, usage chunk, [DONE]). Every choice of every
// prompt (n choices x the batched prompts of /v1/completions) runs on the engine at once, as
// vLLM's child requests do; their chunks interleave in the order the engine produces them.
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

// Events from the engine thread to the request's coroutine, tagged with the choice they belong to
// (HTTP runs on one thread: a posted wake-up lands while the coroutine waits, or before it looks
// at the queue again).
class Mailbox : public std::enable_shared_from_this<Mailbox> {
 public:
  using Item = std::pair<size_t, GenEvent>;
  explicit Mailbox(net::any_io_executor ex) : timer_(ex) {}
  void push(size_t choice, const GenEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.emplace_back(choice, e);
    }
    net::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }
  // Next event, or nullopt after `poll` without one (so the caller can check the client).
  net::awaitable<std::optional<Item>> pop(std::chrono::milliseconds poll) {
    if (auto e = try_pop()) co_return e;
    timer_.expires_after(poll);
    auto [ec] = co_await timer_.async_wait(net::experimental::as_tuple(net::use_awaitable));
    (void)ec;
    co_return try_pop();
  }

 private:
  std::optional<Item> try_pop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (q_.empty()) return std::nullopt;
    Item e = std::move(q_.front());
    q_.pop_front();
    return e;
  }
  std::mutex mu_;
  std::deque<Item> q_;
  net::steady_timer timer_;
};

std::vector<int> utf8_bytes(const std::string& s) {
  std::vector<int> out;
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
  return out;
}

// One choice: a child request on the engine and what it has produced.
struct Choice {
  size_t prompt = 0;   // index into the request's prompts
  int64_t index = 0;   // choices[].index: prompt * n + j
  std::shared_ptr<GenerationJob> job;
  std::unique_ptr<TextAssembler> text;
  bool finished = false, first_chunk = true;
  std::string out_text;
  std::vector<int32_t> token_ids;
  std::string finish_reason;
  OJson stop_reason = nullptr;
  int64_t completion_tokens = 0;
  int64_t streamed_chars = 0;  // characters of generated text sent (completions' streamed text_offset base)
  std::vector<TokenLogprob> logprobs;         // per generated token (when asked)
  std::vector<TokenLogprob> prompt_logprobs;  // prompt tokens 1..n-1 (when asked)
  std::optional<RequestTiming> timing;        // from the engine's finishing event
  std::optional<double> ttft;                 // seconds from the request's arrival
  std::chrono::steady_clock::time_point last_token;
  double e2e = 0;                             // seconds from arrival to its end
  bool prompt_counted = false;                // its prompt is in the prompt-token counter
  std::string tool_text;                      // a forced tool call's text so far (after the reasoning)
  bool tool_header_sent = false;              // a named call's first delta (id, type, name) went out
  RequiredToolCallStream tool_stream;         // "required": the calls streamed so far
  std::unique_ptr<AutoToolCallStream> auto_stream;  // "auto": content, then the calls the parser reads
};

// finish_reason of a choice whose output became tool calls: "tool_calls" for "required" (as
// OpenAI's; vLLM 0.11 does the same), the engine's reason for a named function.
std::string tool_finish_reason(const ToolChoice& tc, const std::string& reason, bool any_call) {
  if (tc.kind == ToolChoice::Kind::kAuto) return any_call ? "tool_calls" : reason;  // vLLM's auto_tools_called
  return tc.kind == ToolChoice::Kind::kRequired && reason == "stop" && any_call ? "tool_calls" : reason;
}

}  // namespace

// A completions-style logprobs object over `ids` whose entries are `lps` (nullptr: the prompt's
// first token, which has none), offsets from `offset` on by the characters of each token string.
OJson ApiServer::completion_logprobs(std::span<const int32_t> ids, std::span<const TokenLogprob* const> lps,
                                     const CompletionParams& p, int64_t offset) const {
  OJson tokens = OJson::array(), token_lp = OJson::array(), top = OJson::array(), offsets = OJson::array();
  for (size_t k = 0; k < ids.size(); ++k) {
    const std::string t = token_string(ids[k], p);
    tokens.push_back(t);
    offsets.push_back(offset);
    offset += py_len(t);
    if (!lps[k]) {
      token_lp.push_back(nullptr);
      top.push_back(nullptr);
      continue;
    }
    token_lp.push_back(lps[k]->logprob);
    OJson m = OJson::object();
    m[t] = lps[k]->logprob;
    // The token, then the top ones: at most logprobs + 1 entries (vLLM's filter), whatever
    // prompt_logprobs computed for the echoed prompt.
    for (const auto& [id, v] : lps[k]->top) {
      if (static_cast<int64_t>(m.size()) > p.gen.logprobs) break;
      m[token_string(id, p)] = v;
    }
    top.push_back(m);
  }
  return {{"text_offset", offsets}, {"token_logprobs", token_lp}, {"tokens", tokens}, {"top_logprobs", top}};
}

// vLLM's decoded token of a logprob entry: the token's text, or "token_id:<id>" with
// return_tokens_as_token_ids.
std::string ApiServer::token_string(int32_t id, const CompletionParams& p) const {
  if (p.tokens_as_ids) return fmt::format("token_id:{}", id);
  return tok::sanitize_utf8(tok_.token_bytes(id));
}

OJson ApiServer::chat_logprob(int32_t id, const TokenLogprob& lp, const CompletionParams& p) const {
  const std::string decoded = tok::sanitize_utf8(tok_.token_bytes(id));
  OJson top = OJson::array();
  for (const auto& [tid, v] : lp.top) {
    const std::string tt = token_string(tid, p);
    top.push_back({{"token", tt}, {"logprob", v}, {"bytes", utf8_bytes(tt)}});
  }
  return {{"token", token_string(id, p)}, {"logprob", lp.logprob}, {"bytes", utf8_bytes(decoded)}, {"top_logprobs", top}};
}

// vLLM's prompt_logprobs: [null, {"<id>": {"logprob", "rank", "decoded_token"}, ...}, ...], the
// prompt token first, then the top k.
OJson ApiServer::prompt_logprobs_json(const std::vector<int32_t>& prompt, const std::vector<TokenLogprob>& lps) const {
  OJson out = OJson::array({nullptr});
  for (size_t k = 0; k < lps.size() && k + 1 < prompt.size(); ++k) {
    OJson m = OJson::object();
    const int32_t id = prompt[k + 1];
    const auto entry = [&](int32_t t, float lp, int64_t rank) {
      m[std::to_string(t)] = {{"logprob", lp}, {"rank", rank}, {"decoded_token", tok::sanitize_utf8(tok_.token_bytes(t))}};
    };
    entry(id, lps[k].logprob, lps[k].rank);
    for (size_t r = 0; r < lps[k].top.size(); ++r)
      if (lps[k].top[r].first != id) entry(lps[k].top[r].first, lps[k].top[r].second, static_cast<int64_t>(r) + 1);
    out.push_back(m);
  }
  return out;
}

net::awaitable<void> ApiServer::generate(bool is_chat, std::vector<PromptIn> prompts, CompletionParams p, std::string id,
                                         http::HttpResponder& out) {
  const int64_t created = unix_now();
  ++*in_flight_;
  struct InFlight {
    std::shared_ptr<std::atomic<int64_t>> n;
    ~InFlight() { --*n; }
  } in_flight_guard{in_flight_};
  const std::string& model_name = o_.served_names.front();
  const char* object = is_chat ? "chat.completion.chunk" : "text_completion";
  auto chunk_head = [&] { return OJson{{"id", id}, {"object", object}, {"created", created}, {"model", model_name}}; };
  auto sse = [&](const OJson& j) -> net::awaitable<bool> { co_return co_await out.write("data: " + dump(j) + "\n\n"); };
  const auto t0 = std::chrono::steady_clock::now();
  const bool reasoning = is_chat && o_.reasoning_parser == "deepseek_r1";
  const bool with_lp = p.gen.logprobs >= 0;
  int64_t n_prompt_total = 0;
  for (const PromptIn& pr : prompts) n_prompt_total += static_cast<int64_t>(pr.ids.size());

  if (p.stream && !co_await out.begin_stream(kSseType)) co_return;
  // Every choice is submitted at once; the engine batches them.
  auto mailbox = std::make_shared<Mailbox>(co_await net::this_coro::executor);
  std::vector<Choice> choices(prompts.size() * static_cast<size_t>(p.n));
  for (size_t k = 0; k < prompts.size(); ++k) {
    for (int64_t j = 0; j < p.n; ++j) {
      const size_t ci = k * static_cast<size_t>(p.n) + static_cast<size_t>(j);
      Choice& c = choices[ci];
      c.prompt = k;
      c.index = static_cast<int64_t>(ci);
      c.text = std::make_unique<TextAssembler>(tok_, p);
      GenerationParams gp = p.gen;
      gp.max_tokens = prompts[k].max_tokens;
      if (gp.has_seed) gp.sampling.seed += static_cast<uint64_t>(j);
      if (j > 0) gp.prompt_logprobs = -1;  // the same prompt's log-probs, computed once
      c.job = gen_.submit(prompts[k].ids, gp, [mailbox, ci](const GenEvent& e) { mailbox->push(ci, e); });
    }
  }
  auto cancel_all = [&] {
    for (Choice& c : choices)
      if (!c.finished) c.job->cancel();
  };

  bool client_gone = false, roles_sent = false;
  size_t unfinished = choices.size();
  std::optional<double> ttft;  // the request's first token (the log line)
  auto last_check = std::chrono::steady_clock::now();
  while (unfinished > 0 && !client_gone) {
    std::optional<Mailbox::Item> item = co_await mailbox->pop(std::chrono::milliseconds(100));
    // A non-streaming client only shows it left through its socket: look every 100 ms.
    if (std::chrono::steady_clock::now() - last_check > std::chrono::milliseconds(100)) {
      last_check = std::chrono::steady_clock::now();
      if (out.peer_closed()) {
        cancel_all();
        client_gone = true;
        break;
      }
    }
    if (!item) continue;
    Choice& c = choices[item->first];
    const GenEvent& ev = item->second;
    if (ev.timing) c.timing = ev.timing;  // also of a choice a stop string ended (the engine's abort comes after)
    if (c.finished) continue;
    if (!ev.error.empty()) {
      cancel_all();
      const ApiError e{500, "Internal Server Error", ev.error};
      if (p.stream) {
        co_await out.write("data: " + fmt::format("{{\"error\": {{\"message\": {}, \"type\": \"{}\", \"param\": null, \"code\": {}}}}}",
                                                  OJson(e.message).dump(), e.type, e.status) + "\n\ndata: [DONE]\n\n");
        co_await out.end_stream();
      } else {
        co_await out.send(500, kJsonType, error_body(e));
      }
      co_return;
    }
    const PromptIn& pr = prompts[c.prompt];
    const int64_t n_prompt = static_cast<int64_t>(pr.ids.size());
    const auto now = std::chrono::steady_clock::now();
    if (!ev.tokens.empty()) {  // time to first token and inter-token latency per choice (vLLM's child requests)
      if (!ttft) ttft = std::chrono::duration<double>(now - t0).count();
      if (!c.ttft) {
        c.ttft = std::chrono::duration<double>(now - t0).count();
        metrics_.ttft.observe(*c.ttft);
      } else {
        metrics_.itl.observe(std::chrono::duration<double>(now - c.last_token).count());
      }
      c.last_token = now;
    }
    if (!ev.prompt_logprobs.empty()) c.prompt_logprobs = ev.prompt_logprobs;
    // Token counters move as the engine goes, as vLLM's per-step stats (not at the request's end).
    if ((!ev.tokens.empty() || ev.finished) && !c.prompt_counted) {
      c.prompt_counted = true;
      metrics_.prompt_tokens += n_prompt;
    }
    metrics_.generation_tokens += static_cast<int64_t>(ev.tokens.size());
    // Chat streams open with one role chunk per choice (and the echoed message) when the first
    // engine output arrives.
    if (p.stream && is_chat && !roles_sent) {
      roles_sent = true;
      const OJson start_usage = {{"prompt_tokens", n_prompt}, {"total_tokens", n_prompt}, {"completion_tokens", 0}};
      for (const Choice& o : choices) {
        OJson rc = chunk_head();
        rc["choices"] = OJson::array({OJson{{"index", o.index}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                            {"logprobs", nullptr}, {"finish_reason", nullptr}}});
        if (p.continuous_usage) rc["usage"] = start_usage;
        rc["prompt_token_ids"] = p.return_token_ids ? OJson(prompts[o.prompt].ids) : OJson(nullptr);
        if (!co_await sse(rc)) client_gone = true;
      }
      if (!pr.echo_text.empty())
        for (const Choice& o : choices) {
          OJson e = chunk_head();
          e["choices"] = OJson::array({OJson{{"index", o.index}, {"delta", {{"content", pr.echo_text}}},
                                             {"logprobs", nullptr}, {"finish_reason", nullptr}}});
          if (p.continuous_usage) e["usage"] = start_usage;
          if (!co_await sse(e)) client_gone = true;
        }
      if (client_gone) {
        cancel_all();
        break;
      }
    }

    std::vector<int32_t> step_ids;
    std::vector<const TokenLogprob*> step_lp;
    const size_t lp_before = c.logprobs.size();
    for (size_t k = 0; k < ev.tokens.size(); ++k) {
      const int32_t t = ev.tokens[k];
      ++c.completion_tokens;
      c.token_ids.push_back(t);
      step_ids.push_back(t);
      if (t != ev.stop_token) c.text->push(t);  // a stop token is never text
      if (with_lp && k < ev.logprobs.size()) c.logprobs.push_back(ev.logprobs[k]);
    }
    for (size_t k = lp_before; k < c.logprobs.size(); ++k) step_lp.push_back(&c.logprobs[k]);
    bool finished = ev.finished;
    if (finished) {
      c.finish_reason = ev.finish_reason;
      if (ev.stop_token >= 0 && !ev.stop_token_is_eos) c.stop_reason = ev.stop_token;
    }
    std::string delta = c.text->take(finished);
    if (c.text->stopped()) {  // a stop string ends the choice (the engine stops too), also on its last token
      if (!finished) c.job->cancel();
      finished = true;
      c.finish_reason = "stop";
      c.stop_reason = c.text->stop_string();
    }
    if (p.echo_only) delta.clear();  // echo with max_tokens 0: the prompt alone
    c.out_text += delta;
    if (finished) {
      c.finished = true;
      c.e2e = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      --unfinished;
    }
    if (!p.stream) continue;

    OJson chunk = chunk_head();
    OJson choice;
    if (is_chat) {
      OJson d = OJson::object();
      bool skip = false;
      if (reasoning) {
        std::vector<int32_t> prev(c.token_ids.begin(), c.token_ids.end() - static_cast<std::ptrdiff_t>(step_ids.size()));
        auto has = [](const std::vector<int32_t>& v, int32_t t) { return std::find(v.begin(), v.end(), t) != v.end(); };
        const bool only_tag = step_ids.size() == 1 && (step_ids[0] == think_start_ || step_ids[0] == think_end_);
        if (has(prev, think_end_)) {  // the reasoning ended: everything is content, tags too
          d["content"] = delta;
        } else if (only_tag) {
          skip = !finished;  // the tag alone sends no chunk
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
          } else {
            d["reasoning_content"] = body;
          }
          if (!p.include_reasoning && d.contains("reasoning_content")) {
            d.erase("reasoning_content");
            skip = d.empty() && !finished;
          }
        }
      } else {
        d["content"] = delta;
      }
      if (p.tool_choice.kind != ToolChoice::Kind::kNone) {  // the content becomes tool-call deltas
        const std::string text = d.contains("content") && d["content"].is_string() ? d["content"].get<std::string>() : "";
        d.erase("content");
        if (p.tool_choice.kind == ToolChoice::Kind::kAuto) {
          if (!text.empty() || finished) {
            if (!c.auto_stream) c.auto_stream = std::make_unique<AutoToolCallStream>(*tool_parser_);
            AutoToolCallStream::Delta ad = c.auto_stream->update(text, finished);
            if (!ad.content.empty()) d["content"] = ad.content;
            if (!ad.calls.empty()) d["tool_calls"] = ad.calls;
          }
        } else if (!text.empty()) {
          c.tool_text += text;
          OJson calls = OJson::array();
          if (p.tool_choice.kind == ToolChoice::Kind::kRequired) {
            calls = c.tool_stream.update(c.tool_text);
          } else if (!c.tool_header_sent) {
            calls.push_back({{"id", tool_call_id()}, {"type", "function"}, {"index", 0},
                             {"function", {{"name", p.tool_choice.name}, {"arguments", text}}}});
            c.tool_header_sent = true;
          } else {
            calls.push_back({{"index", 0}, {"function", {{"arguments", text}}}});
          }
          if (!calls.empty()) d["tool_calls"] = calls;
        }
        skip = d.empty() && !finished;
      }
      if (skip) continue;
      OJson lp = nullptr;
      if (with_lp) {
        lp = OJson{{"content", OJson::array()}};
        for (size_t k = 0; k < step_lp.size(); ++k) lp["content"].push_back(chat_logprob(step_ids[k], *step_lp[k], p));
      }
      const std::string reason = tool_finish_reason(p.tool_choice, c.finish_reason,
                                                    c.tool_stream.any() || (c.auto_stream && c.auto_stream->any()));
      choice = {{"index", c.index}, {"delta", d}, {"logprobs", lp},
                {"finish_reason", finished ? OJson(reason) : OJson(nullptr)}};
      if (finished) choice["stop_reason"] = c.stop_reason;
      choice["token_ids"] = p.return_token_ids ? OJson(step_ids) : OJson(nullptr);
    } else {
      const bool echo_now = c.first_chunk && p.echo;
      std::string t = echo_now ? pr.echo_text + delta : delta;
      OJson lp = nullptr;
      if (with_lp) {
        // The echoed prompt's tokens come first (its first token has no log-prob); offsets start
        // at the generated text sent so far (vLLM counts the echo only within its own chunk).
        std::vector<int32_t> ids;
        std::vector<const TokenLogprob*> lps;
        if (echo_now) {
          for (int64_t q = 0; q < n_prompt; ++q) {
            ids.push_back(pr.ids[static_cast<size_t>(q)]);
            lps.push_back(q == 0 || static_cast<size_t>(q - 1) >= c.prompt_logprobs.size()
                              ? nullptr : &c.prompt_logprobs[static_cast<size_t>(q - 1)]);
          }
        }
        if (!p.echo_only) {
          ids.insert(ids.end(), step_ids.begin(), step_ids.begin() + static_cast<std::ptrdiff_t>(step_lp.size()));
          lps.insert(lps.end(), step_lp.begin(), step_lp.end());
        }
        lp = completion_logprobs(ids, lps, p, c.streamed_chars);
      }
      choice = {{"index", c.index}, {"text", t}, {"logprobs", lp},
                {"finish_reason", finished ? OJson(c.finish_reason) : OJson(nullptr)},
                {"stop_reason", finished ? c.stop_reason : OJson(nullptr)},
                {"prompt_token_ids", c.first_chunk ? OJson(pr.ids) : OJson(nullptr)},
                {"token_ids", p.return_token_ids ? OJson(step_ids) : OJson(nullptr)}};
    }
    c.streamed_chars += py_len(delta);
    c.first_chunk = false;
    chunk["choices"] = OJson::array({choice});
    if (p.continuous_usage) {
      chunk["usage"] = {{"prompt_tokens", n_prompt}, {"total_tokens", n_prompt + c.completion_tokens},
                        {"completion_tokens", c.completion_tokens}};
    } else if (!is_chat) {
      chunk["usage"] = nullptr;
    }
    if (!co_await sse(chunk)) {
      cancel_all();
      client_gone = true;
    }
  }

  int64_t total_completion = 0;
  for (const Choice& c : choices) {
    total_completion += c.completion_tokens;
    metrics_.gen_len.observe(static_cast<double>(c.completion_tokens));
    if (c.timing) {
      metrics_.queue.observe(c.timing->queue);
      metrics_.prefill.observe(c.timing->prefill);
      metrics_.decode.observe(c.timing->decode);
      metrics_.inference.observe(c.timing->inference);
      if (c.completion_tokens > 1)
        metrics_.request_tpot.observe(c.timing->decode / static_cast<double>(c.completion_tokens - 1));
    }
    auto& counter = client_gone || !c.finished || c.finish_reason == "abort" ? metrics_.success_abort
                    : c.finish_reason == "length"                          ? metrics_.success_length
                                                                           : metrics_.success_stop;
    ++counter;
  }
  // Per choice, as vLLM counts its child requests: prompt tokens and lengths, end-to-end latency;
  // per prompt (a parent request): n, max_tokens, and the most tokens any of its choices generated.
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const Choice& c : choices) {
    const auto n_prompt = static_cast<int64_t>(prompts[c.prompt].ids.size());
    metrics_.prompt_len.observe(static_cast<double>(n_prompt));
    metrics_.e2e.observe(c.finished ? c.e2e : secs);
  }
  for (size_t k = 0; k < prompts.size(); ++k) {
    metrics_.params_n.observe(static_cast<double>(p.n));
    metrics_.params_max_tokens.observe(static_cast<double>(prompts[k].max_tokens));
    int64_t most = 0;
    for (int64_t j = 0; j < p.n; ++j) most = std::max(most, choices[k * static_cast<size_t>(p.n) + static_cast<size_t>(j)].completion_tokens);
    metrics_.max_generation.observe(static_cast<double>(most));
  }
  fmt::print(stderr, "infera: {} prompt_tokens={} completion_tokens={} ttft={:.3f}s time={:.3f}s status={}\n", id,
             n_prompt_total, total_completion, ttft.value_or(0.0), secs, client_gone ? "aborted" : "ok");
  if (client_gone) co_return;

  const OJson usage = {{"prompt_tokens", n_prompt_total}, {"total_tokens", n_prompt_total + total_completion},
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
  const bool with_prompt_lp = p.gen.prompt_logprobs >= 0;
  OJson out_choices = OJson::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const Choice& c = choices[i];
    // Every choice of a prompt shows the log-probs its first choice computed.
    const Choice& first = choices[c.prompt * static_cast<size_t>(p.n)];
    const PromptIn& pr = prompts[c.prompt];
    if (is_chat) {
      OJson content = pr.echo_text + c.out_text, reasoning_content = nullptr;
      if (reasoning) {
        const ReasoningSplit sp = split_reasoning(c.out_text);
        // vLLM: the echoed message, then the content (if any); null only with nothing to show.
        content = sp.content ? OJson(pr.echo_text + *sp.content) : pr.echo_text.empty() ? OJson(nullptr) : OJson(pr.echo_text);
        if (p.include_reasoning && sp.reasoning) reasoning_content = *sp.reasoning;
      }
      OJson tool_calls = OJson::array();
      std::string finish_reason = c.finish_reason;
      if (p.tool_choice.kind == ToolChoice::Kind::kAuto) {  // the calls the parser finds, if any
        const std::optional<std::string> text = reasoning ? split_reasoning(c.out_text).content : c.out_text;
        ParsedToolCalls parsed = tool_parser_->extract(text.value_or(""), true);
        if (!parsed.calls.empty()) {
          tool_calls = std::move(parsed.calls);
          content = parsed.content ? OJson(*parsed.content) : OJson(nullptr);
          finish_reason = "tool_calls";
        }
      } else if (p.tool_choice.kind != ToolChoice::Kind::kNone && c.finish_reason == "abort") {
        content = "";  // ended early (a shutdown): no calls, the reason says why
      } else if (p.tool_choice.kind != ToolChoice::Kind::kNone) {  // the content is the tool calls' text
        const std::optional<std::string> text = reasoning ? split_reasoning(c.out_text).content : c.out_text;
        Result<OJson> calls = !text ? Result<OJson>(Status::error("the reasoning did not end, so no tool call was generated"))
                              : c.stop_reason.is_string()
                                  ? Result<OJson>(Status::error(fmt::format("the stop string {} ended the output inside the tool call",
                                                                            c.stop_reason.dump())))
                                  : whole_tool_calls(p.tool_choice, *text);
        if (!calls) {  // vLLM answers 400 here too: the output cannot be read as the calls asked for
          const std::string why = c.finish_reason == "length" ? fmt::format(
              "{} (the output reached max_tokens after {} tokens; raise max_tokens)", calls.error(), c.completion_tokens)
                                                             : calls.error();
          const std::string body = error_body(ApiError{400, "BadRequestError", why});
          co_await out.send(400, kJsonType, body);
          co_return;
        }
        tool_calls = std::move(*calls);
        content = "";
        finish_reason = tool_finish_reason(p.tool_choice, c.finish_reason, !tool_calls.empty());
      }
      OJson lp = nullptr;
      if (with_lp) {
        lp = OJson{{"content", OJson::array()}};
        for (size_t k = 0; k < c.logprobs.size(); ++k) lp["content"].push_back(chat_logprob(c.token_ids[k], c.logprobs[k], p));
      }
      out_choices.push_back({{"index", c.index},
                             {"message", {{"role", "assistant"}, {"content", content}, {"refusal", nullptr},
                                          {"annotations", nullptr}, {"audio", nullptr}, {"function_call", nullptr},
                                          {"tool_calls", tool_calls}, {"reasoning_content", reasoning_content}}},
                             {"logprobs", lp}, {"finish_reason", finish_reason}, {"stop_reason", c.stop_reason},
                             {"token_ids", p.return_token_ids ? OJson(c.token_ids) : OJson(nullptr)}});
    } else {
      OJson lp = nullptr;
      if (with_lp) {
        std::vector<int32_t> ids;
        std::vector<const TokenLogprob*> lps;
        if (p.echo) {
          for (size_t q = 0; q < pr.ids.size(); ++q) {
            ids.push_back(pr.ids[q]);
            lps.push_back(q == 0 || q - 1 >= first.prompt_logprobs.size() ? nullptr : &first.prompt_logprobs[q - 1]);
          }
        }
        if (!p.echo_only)
          for (size_t k = 0; k < c.logprobs.size(); ++k) {
            ids.push_back(c.token_ids[k]);
            lps.push_back(&c.logprobs[k]);
          }
        lp = completion_logprobs(ids, lps, p, 0);
      }
      out_choices.push_back({{"index", c.index}, {"text", pr.echo_text + c.out_text}, {"logprobs", lp},
                             {"finish_reason", c.finish_reason}, {"stop_reason", c.stop_reason},
                             {"token_ids", p.return_token_ids ? OJson(c.token_ids) : OJson(nullptr)},
                             {"prompt_logprobs", with_prompt_lp ? prompt_logprobs_json(pr.ids, first.prompt_logprobs) : OJson(nullptr)},
                             {"prompt_token_ids", p.return_token_ids ? OJson(pr.ids) : OJson(nullptr)}});
    }
  }
  OJson full_usage = usage;
  full_usage["prompt_tokens_details"] = nullptr;
  OJson resp = {{"id", id}, {"object", is_chat ? "chat.completion" : "text_completion"}, {"created", created},
                {"model", model_name}, {"choices", out_choices}, {"service_tier", nullptr},
                {"system_fingerprint", nullptr}, {"usage", full_usage}};
  if (is_chat) {
    resp["prompt_logprobs"] = with_prompt_lp ? prompt_logprobs_json(prompts[0].ids, choices[0].prompt_logprobs) : OJson(nullptr);
    resp["prompt_token_ids"] = p.return_token_ids ? OJson(prompts[0].ids) : OJson(nullptr);
  }
  resp["kv_transfer_params"] = nullptr;
  co_await out.send(200, kJsonType, dump(resp));
}

}  // namespace infera::server
