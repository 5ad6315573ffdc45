#include "bench_stats.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <nlohmann/json.hpp>

namespace infera::cli::bench {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (rank - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  double s = 0;
  for (double v : values) s += v;
  return s / static_cast<double>(values.size());
}

void SseSplitter::feed(std::string_view bytes, std::vector<std::string>* events) {
  for (char ch : bytes) {
    if (last_cr_ && ch == '\n') {  // the \n of a \r\n whose \r ended the line
      last_cr_ = false;
      continue;
    }
    last_cr_ = ch == '\r';
    if (ch == '\n' || ch == '\r') {
      line(buf_, events);
      buf_.clear();
    } else {
      buf_ += ch;
    }
  }
}

void SseSplitter::finish(std::vector<std::string>* events) {
  if (!buf_.empty()) line(buf_, events);
  buf_.clear();
  line("", events);
}

void SseSplitter::line(std::string_view l, std::vector<std::string>* events) {
  if (l.empty()) {
    if (has_data_) events->push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (l.front() == ':') return;  // comment (keep-alive)
  const size_t colon = l.find(':');
  const std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field != "data") return;
  if (has_data_) data_ += '\n';
  data_ += value;
  has_data_ = true;
}

namespace {

bool non_empty_string(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

std::optional<int64_t> int_field(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::string error_message(const nlohmann::json& e) {
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  return e.dump();
}

}  // namespace

StreamChunk parse_stream_chunk(std::string_view data) {
  StreamChunk c;
  while (!data.empty() && std::isspace(static_cast<unsigned char>(data.front()))) data.remove_prefix(1);
  while (!data.empty() && std::isspace(static_cast<unsigned char>(data.back()))) data.remove_suffix(1);
  if (data == "[DONE]") {
    c.done = true;
    return c;
  }
  const nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    c.error = "unexpected stream data: " + std::string(data.substr(0, 200));
    return c;
  }
  if (j.contains("error")) {  // OpenAI / vLLM / llama-server error events
    c.error = error_message(j["error"]);
    return c;
  }
  if (j.value("object", "") == "error") {  // vLLM's ErrorResponse shape
    c.error = error_message(j);
    return c;
  }
  if (const auto it = j.find("choices"); it != j.end() && it->is_array()) {
    for (const auto& ch : *it) {
      if (!ch.is_object()) continue;
      if (non_empty_string(ch, "text")) c.content = true;
      if (const auto d = ch.find("delta"); d != ch.end() && d->is_object()) {
        const auto tools = d->find("tool_calls");
        if (non_empty_string(*d, "content") || non_empty_string(*d, "reasoning_content") ||
            non_empty_string(*d, "reasoning") || (tools != d->end() && tools->is_array() && !tools->empty()))
          c.content = true;
      }
    }
  }
  if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
    c.prompt_tokens = int_field(*u, "prompt_tokens");
    c.completion_tokens = int_field(*u, "completion_tokens");
  }
  return c;
}

}  // namespace infera::cli::bench
