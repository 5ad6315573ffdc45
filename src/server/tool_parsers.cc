#include "server/tool_parsers.h"

#include "base/json_depth.h"
#include "server/tool_calls.h"

namespace infera::server {

namespace {

constexpr size_t npos = std::string_view::npos;

// How many bytes at the end of `text` are a proper beginning of `marker`.
size_t held_prefix(std::string_view text, std::string_view marker) {
  for (size_t k = std::min(text.size(), marker.size() - 1); k > 0; --k)
    if (text.substr(text.size() - k) == marker.substr(0, k)) return k;
  return 0;
}

OJson call(const std::string& name, const std::string& arguments) {
  return {{"id", tool_call_id()}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
}

// The end of the JSON object or array that starts at `from` (one past its closing bracket), or
// npos if the text ends first.
size_t json_end(std::string_view t, size_t from) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = from; i < t.size(); ++i) {
    const char c = t[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return npos;
}

// {"name": <string>, <args_key>: <any>} as a call whose arguments are Python's json.dumps of the
// value (vLLM's hermes and llama3_json parsers); nullopt if the text is not such an object.
std::optional<OJson> json_call(std::string_view body, std::initializer_list<const char*> args_keys) {
  if (json_nesting_depth(body) > kMaxRequestJsonDepth) return std::nullopt;  // (re-serialized recursively)
  const OJson j = OJson::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string()) return std::nullopt;
  for (const char* key : args_keys)
    if (j.contains(key)) return call(j["name"].get<std::string>(), py_json_dumps(j[key]));
  return std::nullopt;
}

class HermesParser : public ToolCallParser {
 public:
  ParsedToolCalls extract(std::string_view text, bool final) const override {
    ParsedToolCalls out;
    const size_t first = text.find(kBegin);
    if (first == npos) {
      if (final) out.content = std::string(text);
      return out;
    }
    for (size_t pos = first; pos != npos;) {
      const size_t start = pos + kBegin.size();
      const size_t end = text.find(kEnd, start);
      if (end == npos && !final) break;  // still being written
      const std::string_view body = end == npos ? text.substr(start) : text.substr(start, end - start);
      std::optional<OJson> c = json_call(body, {"arguments"});
      if (!c) {  // vLLM: any call that does not read makes the whole answer content
        if (!final) break;
        return ParsedToolCalls{OJson::array(), std::string(text)};
      }
      out.calls.push_back(std::move(*c));
      pos = end == npos ? npos : text.find(kBegin, end + kEnd.size());
    }
    if (final && first > 0) out.content = std::string(text.substr(0, first));
    return out;
  }
  size_t calls_begin(std::string_view text, size_t& held) const override {
    const size_t at = text.find(kBegin);
    held = at == npos ? held_prefix(text, kBegin) : 0;
    return at;
  }

 private:
  static constexpr std::string_view kBegin = "<tool_call>", kEnd = "</tool_call>";
};

class Llama3JsonParser : public ToolCallParser {
 public:
  ParsedToolCalls extract(std::string_view text, bool final) const override {
    ParsedToolCalls out;
    size_t held = 0;
    if (calls_begin(text, held) == npos) {
      if (final) out.content = std::string(text);
      return out;
    }
    // Objects one after another, each followed by a two-character separator ("; ").
    for (size_t pos = text.rfind(kTag, 0) == 0 ? kTag.size() : 0; pos < text.size();) {
      const size_t end = text[pos] == '{' ? json_end(text, pos) : npos;
      std::optional<OJson> c = end == npos ? std::nullopt : json_call(text.substr(pos, end - pos), {"arguments", "parameters"});
      if (!c) {
        if (!final) break;  // unfinished (or unreadable: decided at the end)
        return ParsedToolCalls{OJson::array(), std::string(text)};
      }
      out.calls.push_back(std::move(*c));
      pos = end + 2;
    }
    return out;
  }
  size_t calls_begin(std::string_view text, size_t& held) const override {
    held = 0;
    if (text.rfind(kTag, 0) == 0 || (!text.empty() && text[0] == '{')) return 0;
    if (!text.empty() && text.size() < kTag.size() && kTag.substr(0, text.size()) == text) held = text.size();
    return npos;
  }

 private:
  static constexpr std::string_view kTag = "<|python_tag|>";
};

class DeepSeekV3Parser : public ToolCallParser {
 public:
  ParsedToolCalls extract(std::string_view text, bool final) const override {
    ParsedToolCalls out;
    const size_t first = text.find(kCallsBegin);
    if (first == npos) {
      if (final) out.content = std::string(text);
      return out;
    }
    // <｜tool▁call▁begin｜>TYPE<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>, the
    // arguments as written (several lines allowed).
    for (size_t pos = text.find(kCallBegin, first); pos != npos; pos = text.find(kCallBegin, pos)) {
      const size_t sep = text.find(kSep, pos + kCallBegin.size());
      const size_t name_end = sep == npos ? npos : text.find(kJsonOpen, sep + kSep.size());
      const size_t args_end = name_end == npos ? npos : text.find(kCallEnd, name_end + kJsonOpen.size());
      if (args_end == npos) break;  // not whole yet
      const std::string_view type = text.substr(pos + kCallBegin.size(), sep - pos - kCallBegin.size());
      const std::string_view name = text.substr(sep + kSep.size(), name_end - sep - kSep.size());
      pos = args_end + kCallEnd.size();
      if (type.find('\n') != npos || name.find('\n') != npos) continue;  // not a call (vLLM's pattern is line-bound)
      const size_t args_from = name_end + kJsonOpen.size();
      out.calls.push_back(call(std::string(name), std::string(text.substr(args_from, args_end - args_from))));
    }
    if (final) {
      if (out.calls.empty()) return ParsedToolCalls{OJson::array(), std::string(text)};
      if (first > 0) out.content = std::string(text.substr(0, first));
    }
    return out;
  }
  size_t calls_begin(std::string_view text, size_t& held) const override {
    const size_t at = text.find(kCallsBegin);
    held = at == npos ? held_prefix(text, kCallsBegin) : 0;
    return at;
  }

 private:
  static constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>", kCallBegin = "<｜tool▁call▁begin｜>",
                                    kSep = "<｜tool▁sep｜>", kJsonOpen = "\n```json\n", kCallEnd = "\n```<｜tool▁call▁end｜>";
};

}  // namespace

const std::vector<std::string>& tool_call_parser_names() {
  static const std::vector<std::string> names = {"deepseek_v3", "hermes", "llama3_json"};
  return names;
}

std::unique_ptr<ToolCallParser> make_tool_call_parser(std::string_view name) {
  if (name == "hermes") return std::make_unique<HermesParser>();
  if (name == "llama3_json") return std::make_unique<Llama3JsonParser>();
  if (name == "deepseek_v3") return std::make_unique<DeepSeekV3Parser>();
  return nullptr;
}

AutoToolCallStream::Delta AutoToolCallStream::update(std::string_view delta, bool final) {
  text_.append(delta);
  Delta out;
  if (begin_ == std::string::npos) {
    size_t held = 0;
    begin_ = parser_.calls_begin(text_, held);
    const size_t upto = begin_ != std::string::npos ? begin_ : final ? text_.size() : text_.size() - held;
    if (upto > content_sent_) out.content = text_.substr(content_sent_, upto - content_sent_);
    content_sent_ = std::max(content_sent_, upto);
  }
  if (begin_ == std::string::npos) return out;
  const ParsedToolCalls parsed = parser_.extract(text_, final);
  if (final && parsed.calls.empty()) {
    // The calls do not read as a whole: like the whole answer, the text is all content (calls
    // streamed before a later one failed stay sent).
    out.content += text_.substr(content_sent_);
    content_sent_ = text_.size();
    return out;
  }
  for (size_t k = calls_sent_; k < parsed.calls.size(); ++k) {
    const OJson& c = parsed.calls[k];
    out.calls.push_back({{"id", c["id"]}, {"type", "function"}, {"index", k}, {"function", c["function"]}});
  }
  calls_sent_ = std::max(calls_sent_, parsed.calls.size());
  return out;
}

}  // namespace infera::server
