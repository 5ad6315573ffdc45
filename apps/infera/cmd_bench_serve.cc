// infera bench-serve: a load generator for any OpenAI-compatible server (infera serve, llama.cpp's
// llama-server, vLLM), in the manner of vLLM's benchmarks/benchmark_serving.py: C client threads
// send streamed requests back to back; each chunk is timed as it arrives (TTFT, inter-token
// latency per chunk, end-to-end latency) and usage.completion_tokens gives the tokens per request.
#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "cli_util.h"
#include "commands.h"

namespace infera::cli {

namespace {

using Clock = std::chrono::steady_clock;
using OJson = nlohmann::ordered_json;

struct ServeBenchArgs {
  std::string url, model, endpoint = "completions", api_key;
  int concurrency = 1, requests = 0, input_len = 128, output_len = 128, warmup = 1;
  uint64_t seed = 0;
  bool json = false;
};

struct RequestResult {
  bool ok = false;
  std::string error;
  double ttft = 0, e2e = 0;  // seconds
  std::vector<double> itl;   // seconds between successive chunks carrying text
  std::optional<int64_t> prompt_tokens;
  int64_t output_tokens = 0;
};

// Common English words, each one token (with its leading space) in the GPT-2, Qwen2 and Llama 3
// vocabularies, so a prompt of I words is about I tokens.
constexpr const char* kWords[] = {
    " the",    " of",     " and",   " to",     " in",      " is",     " was",     " for",    " that",   " with",
    " on",     " as",     " by",    " at",     " from",    " his",    " her",     " it",     " an",     " are",
    " were",   " which",  " this",  " be",     " or",      " has",    " had",     " not",    " but",    " they",
    " their",  " one",    " two",   " new",    " first",   " time",   " year",    " people", " world",  " city",
    " state",  " school", " water", " house",  " day",     " way",    " man",     " life",   " work",   " part",
    " place",  " game",   " film",  " music",  " book",    " war",    " team",    " family", " small",  " large",
    " long",   " old",    " great", " good",   " high",    " early",  " last",    " other",  " many",   " some",
    " more",   " most",   " all",   " each",   " after",   " before", " under",   " over",   " about",  " between",
    " during", " into",   " through", " against", " while", " where", " when",    " because", " would", " could",
    " should", " will",   " can",   " may",    " also",    " only",   " well",    " even",   " made",   " known",
    " called", " used",   " found", " said",   " became",  " began",  " played",  " left",   " took",   " home"};

// Request `index`'s prompt: the same for a given seed on every machine (no std distributions).
std::string make_prompt(uint64_t seed, int index, int n_words) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index));
  constexpr size_t kN = sizeof(kWords) / sizeof(kWords[0]);
  std::string p;
  for (int i = 0; i < n_words; ++i) p += kWords[rng() % kN];
  return p;
}

// The message in an error body ({"error": {"message": ...}}, {"object": "error", "message": ...}),
// else the body itself, shortened.
std::string body_error(const std::string& body) {
  const auto c = bench::parse_stream_chunk(body);
  if (!c.error.empty() && c.error.rfind("unexpected stream data", 0) != 0) return c.error;
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

// One libcurl handle per client thread: it keeps its connection alive between requests.
class Client {
 public:
  explicit Client(const std::string& api_key) : c_(curl_easy_init()) {
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip for long prompts
    if (!api_key.empty()) headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + api_key).c_str());
  }
  ~Client() {
    curl_slist_free_all(headers_);
    if (c_) curl_easy_cleanup(c_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A plain GET; transport failures are errors, any HTTP status is returned.
  Result<std::pair<long, std::string>> get(const std::string& url) {
    if (!c_) return error("libcurl failed to initialise");
    std::string body;
    setup(url, &collect, &body);
    curl_easy_setopt(c_, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c_, CURLOPT_TIMEOUT, 30L);
    const CURLcode rc = curl_easy_perform(c_);
    curl_easy_setopt(c_, CURLOPT_TIMEOUT, 0L);
    if (rc != CURLE_OK) return error("{}", err_[0] ? err_ : curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(c_, CURLINFO_RESPONSE_CODE, &status);
    return std::make_pair(status, std::move(body));
  }

  // One streamed completion, timed chunk by chunk.
  RequestResult stream(const std::string& url, const std::string& payload) {
    RequestResult r;
    if (!c_) {
      r.error = "libcurl failed to initialise";
      return r;
    }
    StreamState s;
    s.curl = c_;
    s.r = &r;
    setup(url, &on_bytes, &s);
    curl_easy_setopt(c_, CURLOPT_POST, 1L);
    curl_easy_setopt(c_, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c_, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    s.start = Clock::now();
    const CURLcode rc = curl_easy_perform(c_);
    const auto end = Clock::now();
    r.e2e = std::chrono::duration<double>(end - s.start).count();
    s.events.clear();
    s.sse.finish(&s.events);
    s.handle(end);
    long status = 0;
    curl_easy_getinfo(c_, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
      r.error = err_[0] ? err_ : curl_easy_strerror(rc);
    } else if (status != 200) {
      r.error = fmt::format("HTTP {}: {}", status, body_error(s.error_body));
    } else if (r.error.empty() && s.content_chunks == 0) {
      r.error = "the stream carried no generated text";
    } else if (r.error.empty() && !s.done) {
      r.error = "the stream ended without [DONE]";
    }
    r.ok = r.error.empty();
    r.output_tokens = s.completion_tokens.value_or(s.content_chunks);
    return r;
  }

 private:
  struct StreamState {
    CURL* curl = nullptr;
    RequestResult* r = nullptr;
    Clock::time_point start{}, last{};
    long status = 0;
    std::string error_body;
    bench::SseSplitter sse;
    std::vector<std::string> events;
    int64_t content_chunks = 0;
    std::optional<int64_t> completion_tokens;
    bool done = false;

    void handle(Clock::time_point now) {
      for (const std::string& e : events) {
        const bench::StreamChunk c = bench::parse_stream_chunk(e);
        if (!c.error.empty()) {
          if (r->error.empty()) r->error = c.error;
          continue;
        }
        done = done || c.done;
        if (c.content) {
          if (content_chunks == 0)
            r->ttft = std::chrono::duration<double>(now - start).count();
          else
            r->itl.push_back(std::chrono::duration<double>(now - last).count());
          last = now;
          ++content_chunks;
        }
        if (c.completion_tokens) completion_tokens = c.completion_tokens;
        if (c.prompt_tokens) r->prompt_tokens = c.prompt_tokens;
      }
    }
  };

  static size_t collect(char* p, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(p, size * n);
    return size * n;
  }
  // Every read is stamped on arrival; the chunks it completes share that time (as in vLLM's tool).
  static size_t on_bytes(char* p, size_t size, size_t n, void* user) {
    auto* s = static_cast<StreamState*>(user);
    const auto now = Clock::now();
    if (s->status == 0) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) {
      if (s->error_body.size() < 4096) s->error_body.append(p, size * n);
      return size * n;
    }
    s->events.clear();
    s->sse.feed(std::string_view(p, size * n), &s->events);
    s->handle(now);
    return size * n;
  }
  void setup(const std::string& url, curl_write_callback write, void* data) {
    err_[0] = 0;
    curl_easy_setopt(c_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(c_, CURLOPT_USERAGENT, "infera-bench-serve/0.1");
    curl_easy_setopt(c_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c_, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c_, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a request that sends nothing for 10 min fails
    curl_easy_setopt(c_, CURLOPT_LOW_SPEED_TIME, 600L);
    curl_easy_setopt(c_, CURLOPT_ERRORBUFFER, err_);
    curl_easy_setopt(c_, CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(c_, CURLOPT_WRITEDATA, data);
  }

  CURL* c_;
  curl_slist* headers_ = nullptr;
  char err_[CURL_ERROR_SIZE] = {0};
};

std::string request_body(const ServeBenchArgs& a, const std::string& prompt) {
  OJson j = {{"model", a.model}};
  if (a.endpoint == "chat")
    j["messages"] = OJson::array({OJson{{"role", "user"}, {"content", prompt}}});
  else
    j["prompt"] = prompt;
  j["max_tokens"] = a.output_len;
  j["temperature"] = 0;
  j["ignore_eos"] = true;  // vLLM and llama-server: always generate max_tokens
  j["stream"] = true;
  j["stream_options"] = {{"include_usage", true}};
  return j.dump();
}

OJson summarize(const ServeBenchArgs& a, const std::vector<RequestResult>& results, double duration) {
  int64_t ok = 0, failed = 0, in_tokens = 0, out_tokens = 0, in_reported = 0;
  std::vector<double> ttft, itl, e2e, per_stream;
  std::string first_error;
  for (const RequestResult& r : results) {
    if (!r.ok) {
      ++failed;
      if (first_error.empty()) first_error = r.error;
      continue;
    }
    ++ok;
    in_tokens += r.prompt_tokens.value_or(a.input_len);  // the nominal length where usage is missing
    in_reported += r.prompt_tokens ? 1 : 0;
    out_tokens += r.output_tokens;
    ttft.push_back(r.ttft * 1e3);
    e2e.push_back(r.e2e * 1e3);
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
    // Tokens after the first over the time after the first: 1 / vLLM's TPOT.
    if (r.output_tokens > 1 && r.e2e > r.ttft)
      per_stream.push_back(static_cast<double>(r.output_tokens - 1) / (r.e2e - r.ttft));
  }
  for (double& v : itl) v *= 1e3;
  const double d = duration > 0 ? duration : 1;
  return OJson{{"url", a.url},
               {"model", a.model},
               {"endpoint", a.endpoint},
               {"concurrency", a.concurrency},
               {"requests", a.requests},
               {"input_len", a.input_len},
               {"output_len", a.output_len},
               {"completed", ok},
               {"failed", failed},
               {"duration_s", duration},
               {"total_input_tokens", in_tokens},
               {"total_output_tokens", out_tokens},
               {"mean_input_tokens", ok ? static_cast<double>(in_tokens) / static_cast<double>(ok) : 0.0},
               {"input_tokens_from_usage", ok > 0 && in_reported == ok},
               {"request_throughput", static_cast<double>(ok) / d},
               {"output_throughput", static_cast<double>(out_tokens) / d},
               {"per_stream_output_throughput", bench::mean(per_stream)},
               {"mean_ttft_ms", bench::mean(ttft)},
               {"median_ttft_ms", bench::percentile(ttft, 50)},
               {"p90_ttft_ms", bench::percentile(ttft, 90)},
               {"p99_ttft_ms", bench::percentile(ttft, 99)},
               {"mean_itl_ms", bench::mean(itl)},
               {"median_itl_ms", bench::percentile(itl, 50)},
               {"p90_itl_ms", bench::percentile(itl, 90)},
               {"p99_itl_ms", bench::percentile(itl, 99)},
               {"median_e2el_ms", bench::percentile(e2e, 50)},
               {"p99_e2el_ms", bench::percentile(e2e, 99)},
               {"first_error", first_error.empty() ? OJson(nullptr) : OJson(first_error)}};
}

void print_table(const OJson& s) {
  auto title = [](const char* t, char fill) {
    const int w = 50, n = static_cast<int>(std::string(t).size()) + 2;
    const std::string l((w - n) / 2, fill), r(w - n - (w - n) / 2, fill);
    std::printf("%s %s %s\n", l.c_str(), t, r.c_str());
  };
  auto row = [](const char* name, const std::string& v) { std::printf("%-40s%10s\n", name, v.c_str()); };
  auto num = [&](const char* name, const char* key) { row(name, fmt::format("{:.2f}", s[key].get<double>())); };
  auto count = [&](const char* name, const char* key) { row(name, std::to_string(s[key].get<int64_t>())); };
  title("Serving Benchmark Result", '=');
  count("Successful requests:", "completed");
  count("Failed requests:", "failed");
  num("Benchmark duration (s):", "duration_s");
  count(s["input_tokens_from_usage"].get<bool>() ? "Total input tokens:" : "Total input tokens (nominal):",
        "total_input_tokens");
  count("Total generated tokens:", "total_output_tokens");
  num("Mean input tokens per request:", "mean_input_tokens");
  num("Request throughput (req/s):", "request_throughput");
  num("Output token throughput (tok/s):", "output_throughput");
  num("Per-stream output speed (tok/s):", "per_stream_output_throughput");
  title("Time to First Token", '-');
  num("Mean TTFT (ms):", "mean_ttft_ms");
  num("Median TTFT (ms):", "median_ttft_ms");
  num("P90 TTFT (ms):", "p90_ttft_ms");
  num("P99 TTFT (ms):", "p99_ttft_ms");
  title("Inter-token Latency", '-');
  num("Mean ITL (ms):", "mean_itl_ms");
  num("Median ITL (ms):", "median_itl_ms");
  num("P90 ITL (ms):", "p90_itl_ms");
  num("P99 ITL (ms):", "p99_itl_ms");
  title("End-to-end Latency", '-');
  num("Median E2EL (ms):", "median_e2el_ms");
  num("P99 E2EL (ms):", "p99_e2el_ms");
  std::printf("%s\n", std::string(50, '=').c_str());
}

int usage_error(const std::string& message) {
  fail(message);
  return 2;
}

int run_bench_serve(ServeBenchArgs a) {
  if (a.url.empty()) return usage_error("--url is required, e.g. --url http://127.0.0.1:8000");
  if (a.url.rfind("http://", 0) != 0 && a.url.rfind("https://", 0) != 0)
    return usage_error("--url must start with http:// or https://");
  while (!a.url.empty() && a.url.back() == '/') a.url.pop_back();
  if (a.url.size() > 3 && a.url.compare(a.url.size() - 3, 3, "/v1") == 0) a.url.resize(a.url.size() - 3);
  if (a.endpoint != "completions" && a.endpoint != "chat") return usage_error("--endpoint must be completions or chat");
  if (a.concurrency < 1 || a.input_len < 1 || a.output_len < 1 || a.warmup < 0 || a.requests < 0)
    return usage_error("--concurrency, --input-len and --output-len must be >= 1, --requests and --warmup >= 0");
  if (a.requests == 0) a.requests = 4 * a.concurrency;
  static const bool init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!init) return usage_error("libcurl failed to initialise");

  {  // the server must answer before anything is timed; /v1/models also names the model
    Client probe(a.api_key);
    auto models = probe.get(a.url + "/v1/models");
    if (!models) return usage_error(fmt::format("cannot reach {}: {}", a.url, models.error()));
    if (a.model.empty()) {
      if (models->first != 200)
        return usage_error(fmt::format("GET {}/v1/models: HTTP {}: {} (give --model)", a.url, models->first,
                                       body_error(models->second)));
      const auto j = nlohmann::json::parse(models->second, nullptr, false);
      if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
          j["data"][0].is_object() && j["data"][0].contains("id") && j["data"][0]["id"].is_string())
        a.model = j["data"][0]["id"].get<std::string>();
      if (a.model.empty()) return usage_error(fmt::format("{}/v1/models lists no model (give --model)", a.url));
    }
  }
  const std::string target = a.url + (a.endpoint == "chat" ? "/v1/chat/completions" : "/v1/completions");
  std::fprintf(stderr, "bench-serve: %s, model %s, %d requests at concurrency %d, ~%d input tokens, %d output tokens\n",
               target.c_str(), a.model.c_str(), a.requests, a.concurrency, a.input_len, a.output_len);

  {
    Client client(a.api_key);
    for (int i = 0; i < a.warmup; ++i) {
      const RequestResult r = client.stream(target, request_body(a, make_prompt(a.seed, a.requests + i, a.input_len)));
      if (!r.ok) return fail("warm-up request failed: " + r.error);
    }
  }

  std::vector<RequestResult> results(static_cast<size_t>(a.requests));
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < std::min(a.concurrency, a.requests); ++t)
      threads.emplace_back([&] {
        Client client(a.api_key);
        for (int i; (i = next.fetch_add(1)) < a.requests;)
          results[static_cast<size_t>(i)] = client.stream(target, request_body(a, make_prompt(a.seed, i, a.input_len)));
      });
  }
  const double duration = std::chrono::duration<double>(Clock::now() - t0).count();

  const OJson s = summarize(a, results, duration);
  if (a.json)
    std::printf("%s\n", s.dump(2).c_str());
  else
    print_table(s);
  if (s["failed"].get<int64_t>() > 0)
    std::fprintf(stderr, "infera: %lld of %d requests failed; the first: %s\n",
                 static_cast<long long>(s["failed"].get<int64_t>()), a.requests,
                 s["first_error"].get<std::string>().c_str());
  return s["completed"].get<int64_t>() == 0 ? 1 : 0;
}

}  // namespace

void add_bench_serve(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ServeBenchArgs>();
  CLI::App* c = app.add_subcommand(
      "bench-serve", "Load-test an OpenAI-compatible server (infera serve, llama-server, vLLM): throughput, TTFT, "
                     "inter-token and end-to-end latency of streamed requests (like vLLM's benchmark_serving.py)");
  c->add_option("--url", a->url, "server base URL, e.g. http://127.0.0.1:8000 (required)");
  c->add_option("--model", a->model, "model name to send (default: the first id of GET /v1/models)");
  c->add_option("--endpoint", a->endpoint, "completions (/v1/completions) or chat (/v1/chat/completions)")
      ->capture_default_str();
  c->add_option("--concurrency", a->concurrency, "client threads, each sending requests back to back")
      ->capture_default_str();
  c->add_option("--requests", a->requests, "timed requests in all (default 4 x concurrency)");
  c->add_option("--input-len", a->input_len,
                "prompt length in words of about one token each (approximate; the server's usage is reported)")
      ->capture_default_str();
  c->add_option("--output-len", a->output_len, "max_tokens, with ignore_eos so every request generates them all")
      ->capture_default_str();
  c->add_option("--seed", a->seed, "seed of the prompts' pseudo-random words")->capture_default_str();
  c->add_option("--api-key", a->api_key, "sent as Authorization: Bearer KEY");
  c->add_option("--warmup", a->warmup, "untimed requests sent first")->capture_default_str();
  c->add_flag("--json", a->json, "print one JSON object instead of the table");
  c->callback([a, exit_code] { *exit_code = run_bench_serve(*a); });
}

}  // namespace infera::cli
