#include "server/tool_calls.h"

#include <random>
#include <set>

#include <fmt/format.h>

#include "base/json_depth.h"
#include "chat_template/value.h"

namespace infera::server {

namespace {

// Python's str() of a JSON value inside vLLM's messages: None, True/False, text as it is.
std::string py_str(const OJson& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

ToolChoiceError shape(std::string m) { return {400, "Bad Request", std::move(m)}; }
ToolChoiceError bad(std::string m) { return {400, "BadRequestError", std::move(m)}; }

const OJson kNoParameters = {{"type", "object"}, {"properties", OJson::object()}};

const char* kUsage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`";

// A tool's parameters schema, or null when it has none ({} counts as none, as in vLLM).
const OJson* parameters_of(const OJson& tool) {
  const OJson& f = tool["function"];
  if (!f.contains("parameters") || f["parameters"].is_null() || f["parameters"].empty()) return nullptr;
  return &f["parameters"];
}

// A schema's local $refs ("#", "#/...") moved under `base`, a JSON pointer fragment, so that it
// can sit inside a larger document (values of const / enum / default / examples are data, not
// schemas). Depth is bounded by the request's (kMaxRequestJsonDepth).
void rebase_refs(OJson& s, const std::string& base) {
  if (s.is_array()) {
    for (OJson& x : s) rebase_refs(x, base);
    return;
  }
  if (!s.is_object()) return;
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (it.key() == "$ref" && it.value().is_string()) {
      const std::string r = it.value().get<std::string>();
      if (r == "#") it.value() = base;
      else if (r.rfind("#/", 0) == 0) it.value() = base + r.substr(1);
    } else if (it.key() != "const" && it.key() != "enum" && it.key() != "default" && it.key() != "examples") {
      rebase_refs(it.value(), base);
    }
  }
}

}  // namespace

std::optional<ToolChoiceError> parse_tool_choice(const OJson& body, ToolChoice& out, OJson& schema, bool auto_tools) {
  out = ToolChoice{};
  schema = nullptr;
  const bool tools_set = body.contains("tools") && !body["tools"].is_null();
  if (tools_set && !body["tools"].is_array()) return shape("'tools' must be a list");
  if (tools_set) {
    const OJson& tools = body["tools"];
    for (size_t i = 0; i < tools.size(); ++i) {
      const OJson& t = tools[i];
      if (!t.is_object()) return shape(fmt::format("'tools[{}]' must be an object", i));
      if (t.contains("type") && t["type"] != "function")
        return shape(fmt::format("'tools[{}].type': Input should be 'function'", i));
      if (!t.contains("function") || !t["function"].is_object())
        return shape(fmt::format("'tools[{}].function' is required (an object)", i));
      const OJson& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string())
        return shape(fmt::format("'tools[{}].function.name' is required (a string)", i));
      if (f.contains("description") && !f["description"].is_null() && !f["description"].is_string())
        return shape(fmt::format("'tools[{}].function.description' must be a string", i));
      if (f.contains("parameters") && !f["parameters"].is_null() && !f["parameters"].is_object())
        return shape(fmt::format("'tools[{}].function.parameters' must be an object (a JSON schema)", i));
    }
  }
  const bool has_tools = tools_set && !body["tools"].empty();
  if (!body.contains("tool_choice") || body["tool_choice"].is_null()) {
    // vLLM: tools without tool_choice mean "auto", which needs an auto tool parser.
    if (has_tools && !auto_tools) return bad("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set");
    if (has_tools) out.kind = ToolChoice::Kind::kAuto;
    return std::nullopt;
  }
  const OJson& tc = body["tool_choice"];
  if (tc == "none") return std::nullopt;
  if (!tools_set) return shape("When using `tool_choice`, `tools` must be set.");
  const OJson& tools = body["tools"];
  if (tc == "required" && tools.empty()) return std::nullopt;  // as OpenAI: nothing to call, "none"
  if (tc.is_object()) {
    const OJson fn = tc.contains("function") ? tc["function"] : OJson(nullptr);
    if (!fn.is_object()) return shape(fmt::format("Invalid value for `function`: `{}` in `tool_choice`! {}", py_str(fn), kUsage));
    if (!fn.contains("name")) return shape(fmt::format("Expected field `name` in `function` in `tool_choice`! {}", kUsage));
    if (!fn["name"].is_string() || fn["name"].get<std::string>().empty())
      return shape(fmt::format("Invalid `name` in `function`: `{}` in `tool_choice`! {}", py_str(fn["name"]), kUsage));
    const std::string name = fn["name"].get<std::string>();
    const OJson* tool = nullptr;
    for (const OJson& t : tools)
      if (t["function"]["name"] == name) {
        tool = &t;
        break;
      }
    if (!tool) return shape("The tool specified in `tool_choice` does not match any of the specified `tools`");
    if (tc.contains("type") && tc["type"] != "function") return shape("'tool_choice.type': Input should be 'function'");
    out.kind = ToolChoice::Kind::kNamed;
    out.name = name;
    // A function without parameters takes an empty object (vLLM leaves such arguments
    // unconstrained, free text no JSON parser reads; OpenAI answers "{}").
    schema = parameters_of(*tool) ? *parameters_of(*tool) : kNoParameters;
    return std::nullopt;
  }
  if (tc == "auto") {
    if (!auto_tools) return bad("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set");
    if (!tools.empty()) out.kind = ToolChoice::Kind::kAuto;
    return std::nullopt;
  }
  if (tc != "required")
    return shape(fmt::format("Invalid value for `tool_choice`: {}! Only named tools, \"none\", \"auto\" or \"required\" are supported.",
                             py_str(tc)));
  // "required": a non-empty array of {"name": <one of the tools>, "parameters": <its schema>}.
  // Each tool's own $refs ("#/$defs/...", draft-07 "#/definitions/...", "#/properties/...") are
  // moved to where its parameters now sit, so tools never share (or clash over) definitions.
  out.kind = ToolChoice::Kind::kRequired;
  OJson branches = OJson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const OJson& t = tools[i];
    OJson params = parameters_of(t) ? *parameters_of(t) : kNoParameters;
    rebase_refs(params, fmt::format("#/items/anyOf/{}/properties/parameters", i));
    branches.push_back({{"properties", {{"name", {{"type", "string"}, {"enum", OJson::array({t["function"]["name"]})}}},
                                        {"parameters", params}}},
                        {"required", OJson::array({"name", "parameters"})}});
  }
  // vLLM writes {"type": "object", "anyOf": [...]}; every branch is an object already.
  schema = {{"type", "array"}, {"minItems", 1}, {"items", {{"anyOf", branches}}}};
  return std::nullopt;
}

std::string tool_call_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("chatcmpl-tool-{:016x}{:016x}", rng(), rng());
}

std::string py_json_dumps(const OJson& value) {
  Result<std::string> s = jinja::to_json(jinja::Value::from_json(value), jinja::JsonOptions{});
  return s ? *s : value.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

Result<OJson> whole_tool_calls(const ToolChoice& choice, const std::string& text) {
  OJson calls = OJson::array();
  if (choice.kind == ToolChoice::Kind::kNamed) {
    calls.push_back({{"id", tool_call_id()}, {"type", "function"}, {"function", {{"name", choice.name}, {"arguments", text}}}});
    return calls;
  }
  if (json_nesting_depth(text) > kMaxRequestJsonDepth) return Status::error("the generated tool calls nest too deep");
  const OJson list = OJson::parse(text, nullptr, false);
  if (list.is_discarded() || !list.is_array())
    return Status::error("the generated tool calls are not a complete JSON array");
  for (const OJson& e : list) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("parameters"))
      return Status::error("a generated tool call lacks its 'name' or 'parameters'");
    calls.push_back({{"id", tool_call_id()},
                     {"type", "function"},
                     {"function", {{"name", e["name"]}, {"arguments", py_json_dumps(e["parameters"])}}}});
  }
  return calls;
}

namespace {

// A reader over the text of a guided `[{"name": ..., "parameters": ...}, ...]` array that may end
// anywhere. Each method returns false where the text ends (or does not fit).
class DraftReader {
 public:
  explicit DraftReader(std::string_view t) : t_(t) {}
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ >= t_.size() || t_[i_] != c) return false;
    ++i_;
    return true;
  }
  bool peek(char c) {
    ws();
    return i_ < t_.size() && t_[i_] == c;
  }
  // A whole JSON string (decoded into `out`), or false.
  bool string(std::string& out) {
    ws();
    const size_t start = i_;
    if (i_ >= t_.size() || t_[i_] != '"') return false;
    for (size_t k = i_ + 1; k < t_.size(); ++k) {
      if (t_[k] == '\\') {
        ++k;
        continue;
      }
      if (t_[k] == '"') {
        const OJson s = OJson::parse(t_.substr(start, k + 1 - start), nullptr, false);
        if (s.is_discarded() || !s.is_string()) return false;
        out = s.get<std::string>();
        i_ = k + 1;
        return true;
      }
    }
    return false;
  }
  // Skips one JSON value; `[from, to)` is its text (as far as it goes). False if it is unfinished.
  bool value(size_t& from, size_t& to) {
    ws();
    from = i_;
    int depth = 0;
    bool in_string = false;
    for (; i_ < t_.size(); ++i_) {
      const char c = t_[i_];
      if (in_string) {
        if (c == '\\') ++i_;
        else if (c == '"') in_string = false;
        if (!in_string && depth == 0) {
          ++i_;
          break;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;  // the enclosing object's end: a scalar ended before it
        if (--depth == 0) {
          ++i_;
          break;
        }
      } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
        break;
      }
    }
    to = std::min(i_, t_.size());
    // Finished if something follows it: only then can a number or literal not go on.
    ws();
    return i_ < t_.size() && to > from;
  }
  std::string_view text(size_t from, size_t to) const { return t_.substr(from, to - from); }

 private:
  std::string_view t_;
  size_t i_ = 0;
};

}  // namespace

std::vector<ToolCallDraft> read_tool_call_drafts(std::string_view text) {
  std::vector<ToolCallDraft> out;
  DraftReader r(text);
  if (!r.eat('[')) return out;
  while (true) {
    if (!out.empty() && !r.eat(',')) return out;
    if (!r.eat('{')) return out;
    ToolCallDraft& d = out.emplace_back();
    bool first = true;
    while (!r.peek('}')) {
      if (!first && !r.eat(',')) return out;
      first = false;
      std::string key;
      if (!r.string(key) || !r.eat(':')) return out;
      if (key == "name") {
        if (!r.string(d.name)) return out;
        d.name_done = true;
        continue;
      }
      size_t from = 0, to = 0;
      const bool done = r.value(from, to);
      if (key == "parameters") {
        d.arguments = std::string(r.text(from, to));
        d.arguments_started = to > from;
      }
      if (!done) return out;
    }
    r.eat('}');
  }
}

OJson RequiredToolCallStream::update(std::string_view text) {
  OJson deltas = OJson::array();
  const std::vector<ToolCallDraft> drafts = read_tool_call_drafts(text);
  for (size_t k = 0; k < drafts.size(); ++k) {
    const ToolCallDraft& d = drafts[k];
    if (k < sent_.size()) {  // its header went out: the arguments' new text
      if (d.arguments.size() > sent_[k]) {
        deltas.push_back({{"index", k}, {"function", {{"arguments", d.arguments.substr(sent_[k])}}}});
        sent_[k] = d.arguments.size();
      }
      continue;
    }
    // The name is whole once the parameters have begun (they follow it in the schema's order).
    if (k != sent_.size() || !d.name_done || !d.arguments_started) break;
    deltas.push_back({{"id", tool_call_id()},
                      {"type", "function"},
                      {"index", k},
                      {"function", {{"name", d.name}, {"arguments", d.arguments}}}});
    sent_.push_back(d.arguments.size());
  }
  return deltas;
}

}  // namespace infera::server
