#include "server/api_types.h"

#include "base/json_depth.h"

#include <cmath>

#include "server/json_schema.h"
#include "tokenizer/unicode.h"

namespace infera::server {

std::string py_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", x);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

namespace {

ApiError bad(std::string message) { return ApiError{400, "BadRequestError", std::move(message)}; }
ApiError schema(std::string message) { return ApiError{400, "Bad Request", std::move(message)}; }

}  // namespace

std::optional<int64_t> py_int(const std::string& t) {
  size_t b = t.find_first_not_of(" \t\n\r"), e = t.find_last_not_of(" \t\n\r");
  if (b == std::string::npos) return std::nullopt;
  bool neg = false;
  if (t[b] == '+' || t[b] == '-') neg = t[b++] == '-';
  if (b > e) return std::nullopt;
  int64_t v = 0;
  for (size_t i = b; i <= e; ++i) {
    if (t[i] == '_' && i > b && i < e && std::isdigit(static_cast<unsigned char>(t[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(t[i + 1])))
      continue;
    if (!std::isdigit(static_cast<unsigned char>(t[i]))) return std::nullopt;
    if (v > (INT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + (t[i] - '0');
  }
  return neg ? -v : v;
}

namespace {

// Optional typed fields: absent or null -> nullopt; wrong type -> schema error. Values convert as
// pydantic's lax mode does for vLLM's request models: numbers from numeric strings, integers from
// integral floats, booleans from 0/1 and from "true"/"false"/"yes"/"no"/"on"/"off"/"t"/"f"/"y"/"n"/"1"/"0".
// Python's float(s) for the decimal forms: optional sign, digits with single underscores between
// them, a fraction, an exponent; surrounding whitespace. (No hex; no inf/nan: no sampling field takes them.)
std::optional<double> py_float_text(const std::string& t) {
  size_t b = t.find_first_not_of(" \t\n\r"), e = t.find_last_not_of(" \t\n\r");
  if (b == std::string::npos) return std::nullopt;
  std::string x;
  bool digits = false;
  for (size_t i = b; i <= e; ++i) {
    const char c = t[i];
    if (c == '_') {  // only between two digits
      if (i == b || i == e || !std::isdigit(static_cast<unsigned char>(t[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(t[i + 1])))
        return std::nullopt;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-')
      return std::nullopt;
    digits = digits || std::isdigit(static_cast<unsigned char>(c));
    x += c;
  }
  if (!digits) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(x.c_str(), &end);
  if (end != x.c_str() + x.size()) return std::nullopt;
  return d;
}

std::optional<double> lax_number(const OJson& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (!v.is_string()) return std::nullopt;
  return py_float_text(v.get<std::string>());
}

std::optional<ApiError> get_number(const OJson& b, const char* key, std::optional<double>& out) {
  if (!b.contains(key) || b[key].is_null()) return std::nullopt;
  const auto d = lax_number(b[key]);
  if (!d) return schema(fmt::format("'{}' must be a number", key));
  out = *d;
  return std::nullopt;
}
std::optional<ApiError> get_int(const OJson& b, const char* key, std::optional<int64_t>& out) {
  if (!b.contains(key) || b[key].is_null()) return std::nullopt;
  const OJson& v = b[key];
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return schema(fmt::format("'{}': Input should be less than or equal to 9223372036854775807", key));
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return std::nullopt;
  }
  std::optional<double> d;
  if (v.is_string()) {
    // pydantic's int from a string: an integer literal ("3_000", " +3 ") or one with a zero fraction ("3.0").
    const std::string t = v.get<std::string>();
    if (const auto i = py_int(t)) {
      out = *i;
      return std::nullopt;
    }
    if (t.find_first_of("eE") == std::string::npos) d = py_float_text(t);
  } else {
    d = lax_number(v);
  }
  if (!d || std::floor(*d) != *d || std::fabs(*d) >= 9.2e18) return schema(fmt::format("'{}' must be an integer", key));
  out = static_cast<int64_t>(*d);
  return std::nullopt;
}
std::optional<ApiError> get_bool(const OJson& b, const char* key, bool& out) {
  if (!b.contains(key) || b[key].is_null()) return std::nullopt;
  const OJson& v = b[key];
  if (v.is_boolean()) {
    out = v.get<bool>();
    return std::nullopt;
  }
  if (v.is_number() && (v.get<double>() == 0 || v.get<double>() == 1)) {
    out = v.get<double>() == 1;
    return std::nullopt;
  }
  if (v.is_string()) {
    std::string t = v.get<std::string>();
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* yes : {"1", "on", "t", "true", "y", "yes"})
      if (t == yes) return out = true, std::nullopt;
    for (const char* no : {"0", "off", "f", "false", "n", "no"})
      if (t == no) return out = false, std::nullopt;
  }
  return schema(fmt::format("'{}' must be a boolean", key));
}

#define INFERA_API_TRY(expr)          \
  do {                                \
    if (auto e_ = (expr)) return e_;  \
  } while (0)

}  // namespace

std::optional<ApiError> parse_common(const OJson& b, const GenerationDefaults& d, bool is_chat,
                                     CompletionParams& p, bool auto_tools) {
  std::optional<double> temperature, top_p, min_p, rep, pres, freq;
  std::optional<int64_t> top_k, n, seed, max_tokens, max_completion_tokens, min_tokens;
  INFERA_API_TRY(get_number(b, "temperature", temperature));
  INFERA_API_TRY(get_number(b, "top_p", top_p));
  INFERA_API_TRY(get_number(b, "min_p", min_p));
  INFERA_API_TRY(get_number(b, "repetition_penalty", rep));
  INFERA_API_TRY(get_number(b, "presence_penalty", pres));
  INFERA_API_TRY(get_number(b, "frequency_penalty", freq));
  INFERA_API_TRY(get_int(b, "top_k", top_k));
  INFERA_API_TRY(get_int(b, "n", n));
  INFERA_API_TRY(get_int(b, "seed", seed));
  INFERA_API_TRY(get_int(b, "max_tokens", max_tokens));
  INFERA_API_TRY(get_int(b, "max_completion_tokens", max_completion_tokens));
  INFERA_API_TRY(get_int(b, "min_tokens", min_tokens));
  INFERA_API_TRY(get_bool(b, "stream", p.stream));
  INFERA_API_TRY(get_bool(b, "ignore_eos", p.gen.ignore_eos));
  INFERA_API_TRY(get_bool(b, "include_stop_str_in_output", p.include_stop_str));
  INFERA_API_TRY(get_bool(b, "skip_special_tokens", p.skip_special_tokens));
  INFERA_API_TRY(get_bool(b, "echo", p.echo));
  INFERA_API_TRY(get_bool(b, "include_reasoning", p.include_reasoning));
  if (b.contains("cache_salt") && !b["cache_salt"].is_null()) {
    // Requests share cached prefix blocks only with requests of the same salt (vLLM's cache_salt).
    if (!b["cache_salt"].is_string()) return schema("'cache_salt' must be a string");
    const std::string salt = b["cache_salt"].get<std::string>();
    if (salt.empty()) return bad("Parameter 'cache_salt' must be a non-empty string if provided.");
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (unsigned char ch : salt) h = (h ^ ch) * 0x100000001b3ULL;
    p.gen.cache_salt = h | 1;  // never 0 (no salt)
  }
  bool rti = false, as_ids = false;
  INFERA_API_TRY(get_bool(b, "return_token_ids", rti));
  INFERA_API_TRY(get_bool(b, "return_tokens_as_token_ids", as_ids));
  p.return_token_ids = rti;
  p.tokens_as_ids = as_ids;
  if (b.contains("stream_options") && !b["stream_options"].is_null()) {
    const OJson& so = b["stream_options"];
    if (!so.is_object()) return schema("'stream_options' must be an object");
    if (!p.stream) return schema("Stream options can only be defined when `stream=True`.");
    p.include_usage = true;
    INFERA_API_TRY(get_bool(so, "include_usage", p.include_usage));
    INFERA_API_TRY(get_bool(so, "continuous_usage_stats", p.continuous_usage));
    p.continuous_usage = p.continuous_usage && p.include_usage;  // vLLM: both must be on
  }
  if (b.contains("stop") && !b["stop"].is_null()) {
    const OJson& s = b["stop"];
    if (s.is_string()) {
      p.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      for (const OJson& x : s) {
        if (!x.is_string()) return schema("'stop' must be a string or a list of strings");
        p.stop.push_back(x.get<std::string>());
      }
    } else {
      return schema("'stop' must be a string or a list of strings");
    }
  }
  if (b.contains("stop_token_ids") && !b["stop_token_ids"].is_null()) {
    if (!b["stop_token_ids"].is_array()) return schema("'stop_token_ids' must be a list of integers");
    for (const OJson& x : b["stop_token_ids"]) {
      if (!x.is_number_integer()) return schema("'stop_token_ids' must be a list of integers");
      p.gen.stop_token_ids.push_back(x.get<int32_t>());
    }
  }
  if (b.contains("logit_bias") && !b["logit_bias"].is_null()) {
    if (!b["logit_bias"].is_object()) return schema("'logit_bias' must be an object");
    for (auto it = b["logit_bias"].begin(); it != b["logit_bias"].end(); ++it) {
      if (!it.value().is_number()) return schema("'logit_bias' values must be numbers");
      const std::optional<int64_t> id = py_int(it.key());
      if (!id || *id < INT32_MIN || *id > INT32_MAX)
        return bad(fmt::format("invalid literal for int() with base 10: '{}'", it.key()));
      p.gen.logit_bias[static_cast<int32_t>(*id)] = std::clamp(it.value().get<float>(), -100.0f, 100.0f);
    }
  }
  if (b.contains("request_id") && b["request_id"].is_string()) p.request_id = b["request_id"].get<std::string>();
  std::optional<int64_t> priority, best_of, truncate;
  INFERA_API_TRY(get_int(b, "priority", priority));
  if (priority && *priority != 0)
    return bad("Priority scheduling is not enabled.");
  INFERA_API_TRY(get_int(b, "best_of", best_of));
  INFERA_API_TRY(get_int(b, "truncate_prompt_tokens", truncate));
  if (truncate && (*truncate < -1 || *truncate == 0))
    return bad(fmt::format("truncate_prompt_tokens must be an integer >= 1 or -1, got {}", *truncate));
  p.truncate_prompt_tokens = truncate.value_or(0);
  if (b.contains("allowed_token_ids") && !b["allowed_token_ids"].is_null()) {
    if (!b["allowed_token_ids"].is_array()) return schema("'allowed_token_ids' must be a list of integers");
    for (const OJson& x : b["allowed_token_ids"]) {
      if (!x.is_number_integer()) return schema("'allowed_token_ids' must be a list of integers");
      p.gen.allowed_token_ids.push_back(x.get<int32_t>());
    }
    if (p.gen.allowed_token_ids.empty()) return bad("allowed_token_ids is not None and empty!");  // vLLM v1 processor
  }
  // Log-probs: chat has logprobs (bool) + top_logprobs (int); completions logprobs (int). Both
  // have prompt_logprobs (int). -1 means the whole vocabulary (refused later against its size).
  std::optional<int64_t> prompt_lp;
  INFERA_API_TRY(get_int(b, "prompt_logprobs", prompt_lp));
  if (prompt_lp) {
    if (p.stream && (*prompt_lp > 0 || *prompt_lp == -1)) return schema("`prompt_logprobs` are not available when `stream=True`.");
    if (*prompt_lp < -1) return schema("`prompt_logprobs` must be a positive value or -1.");
  }
  if (is_chat) {
    bool want = false;
    std::optional<int64_t> top;
    INFERA_API_TRY(get_bool(b, "logprobs", want));
    INFERA_API_TRY(get_int(b, "top_logprobs", top));
    if (top && *top < -1) return schema("`top_logprobs` must be a positive value or -1.");
    if (top && (*top > 0 || *top == -1) && !want) return schema("when using `top_logprobs`, `logprobs` must be set to true.");
    if (want && top && *top > 20) return bad(fmt::format("Requested sample logprobs of {}, which is greater than max allowed: 20", *top));
    if (want) p.gen.logprobs = static_cast<int32_t>(top && *top > 0 ? *top : 0);
    p.logprobs_all = want && top && *top == -1;
  } else {
    std::optional<int64_t> k;
    INFERA_API_TRY(get_int(b, "logprobs", k));
    if (k && *k < -1) return schema("`logprobs` must be a positive value or -1.");
    if (k && *k > 20) return bad(fmt::format("Requested sample logprobs of {}, which is greater than max allowed: 20", *k));
    if (k) p.gen.logprobs = static_cast<int32_t>(std::max<int64_t>(*k, 0));
    p.logprobs_all = k && *k == -1;
  }
  if (prompt_lp) {
    if (*prompt_lp > 20) return bad(fmt::format("Requested prompt logprobs of {}, which is greater than max allowed: 20", *prompt_lp));
    p.gen.prompt_logprobs = static_cast<int32_t>(std::max<int64_t>(*prompt_lp, 0));
    p.prompt_logprobs_all = *prompt_lp == -1;
  }
  // Completions with echo and logprobs show the prompt's tokens too (vLLM asks for prompt
  // log-probs of the same count).
  if (!is_chat && p.echo && p.gen.logprobs >= 0 && !prompt_lp) p.gen.prompt_logprobs = p.gen.logprobs;
  // Fields whose effect infera does not implement yet: refused clearly rather than ignored.
  if (is_chat && b.contains("bad_words") && !b["bad_words"].is_null()) {
    if (!b["bad_words"].is_array()) return schema("'bad_words' must be a list of strings");
    for (const OJson& x : b["bad_words"]) {
      if (!x.is_string()) return schema("'bad_words' must be a list of strings");
      p.bad_words.push_back(x.get<std::string>());
    }
  }
  // Structured outputs: a JSON object (response_format json_object, structured_outputs.json_object)
  // or one of a list of strings (guided_choice, structured_outputs.choice).
  auto choices_of = [&](const OJson& v, const char* what) -> std::optional<ApiError> {
    if (!v.is_array() || v.empty()) return schema(fmt::format("'{}' must be a non-empty list of non-empty strings", what));
    for (const OJson& x : v) {
      if (!x.is_string() || x.get<std::string>().empty())
        return schema(fmt::format("'{}' must be a non-empty list of non-empty strings", what));
      p.choices.push_back(x.get<std::string>());
    }
    p.structured = CompletionParams::Structured::kChoice;
    return std::nullopt;
  };
  // A JSON schema or a regular expression: compiled here to the automaton every choice walks.
  std::string whitespace = "[ ]?";
  for (const OJson* holder : {&b, b.contains("structured_outputs") && b["structured_outputs"].is_object() ? &b["structured_outputs"] : nullptr}) {
    const char* key = holder == &b ? "guided_whitespace_pattern" : "whitespace_pattern";
    if (!holder || !holder->contains(key) || (*holder)[key].is_null()) continue;
    if (!(*holder)[key].is_string()) return schema(fmt::format("'{}' must be a string", key));
    whitespace = (*holder)[key].get<std::string>();
    RegexLimits small;  // a pattern for the space between two tokens: small by nature
    small.max_dfa_states = 256;
    small.max_work = 100000;
    Result<std::shared_ptr<const ByteDfa>> ws = compile_regex(whitespace, small);
    if (!ws) return bad(fmt::format("'{}': {}", key, ws.error()));
    for (size_t st = 0; st < (*ws)->states(); ++st)  // whitespace only: it goes between JSON tokens
      for (int byte = 0; byte < 256; ++byte)
        if (byte != ' ' && byte != '\t' && byte != '\n' && byte != '\r' && (*ws)->step(static_cast<int32_t>(st), static_cast<uint8_t>(byte)) >= 0)
          return bad(fmt::format("'{}' must match only spaces, tabs and line breaks", key));
  }
  auto use_regex = [&](const std::string& pattern, const std::string& what) -> std::optional<ApiError> {
    p.regex = pattern;
    p.regex_source = what;
    p.structured = CompletionParams::Structured::kRegex;
    return std::nullopt;
  };
  bool structured_by_schema = false;  // the structured output so far is a JSON schema's
  auto use_schema = [&](const OJson& v, const std::string& what) -> std::optional<ApiError> {
    OJson parsed;
    const OJson* schema_doc = &v;
    if (v.is_string()) {  // a schema sent as JSON text
      if (json_nesting_depth(v.get<std::string>()) > kMaxRequestJsonDepth)
        return bad(fmt::format("'{}' nests deeper than {} levels", what, kMaxRequestJsonDepth));
      parsed = OJson::parse(v.get<std::string>(), nullptr, false);
      if (parsed.is_discarded()) return bad(fmt::format("'{}' is not valid JSON", what));
      schema_doc = &parsed;
    }
    if (!schema_doc->is_object() && !schema_doc->is_boolean()) return schema(fmt::format("'{}' must be a JSON schema object", what));
    JsonSchemaOptions opt;
    opt.whitespace = whitespace;
    Result<std::string> re = json_schema_regex(*schema_doc, opt);
    if (!re) return bad(fmt::format("'{}': {}", what, re.error()));
    structured_by_schema = true;
    return use_regex(*re, fmt::format("'{}' (the schema's automaton)", what));
  };
  int n_structured = 0;
  if (b.contains("response_format") && !b["response_format"].is_null()) {
    const OJson& rf = b["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      return schema("'response_format' must be an object with a 'type'");
    const std::string type = rf["type"].get<std::string>();
    if (type == "json_object") {
      p.structured = CompletionParams::Structured::kJsonObject;
      ++n_structured;
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
        return schema("'response_format.json_schema' must be an object with a 'schema'");
      const OJson& js = rf["json_schema"];
      if (!js.contains("name") || !js["name"].is_string())
        return schema("'response_format.json_schema.name' is required (a string)");
      if (js.contains("schema") && !js["schema"].is_null() && !js["schema"].is_object())
        return schema("'response_format.json_schema.schema' must be an object");
      if (js.contains("schema") && !js["schema"].is_null()) {
        INFERA_API_TRY(use_schema(js["schema"], "response_format.json_schema.schema"));
      } else {
        p.structured = CompletionParams::Structured::kJsonObject;  // no schema: any JSON object
      }
      ++n_structured;
    } else if (type == "structural_tag") {
      return ApiError{501, "Not Implemented", fmt::format("response_format '{}' is not supported by this server yet", type)};
    } else if (type != "text") {
      return schema("'response_format.type' must be one of 'text', 'json_object', 'json_schema', 'structural_tag'");
    }
  }
  if (b.contains("guided_choice") && !b["guided_choice"].is_null()) {
    INFERA_API_TRY(choices_of(b["guided_choice"], "guided_choice"));
    ++n_structured;
  }
  if (b.contains("guided_json") && !b["guided_json"].is_null()) {
    INFERA_API_TRY(use_schema(b["guided_json"], "guided_json"));
    ++n_structured;
  }
  if (b.contains("guided_regex") && !b["guided_regex"].is_null()) {
    if (!b["guided_regex"].is_string()) return schema("'guided_regex' must be a string");
    INFERA_API_TRY(use_regex(b["guided_regex"].get<std::string>(), "'guided_regex'"));
    ++n_structured;
  }
  if (b.contains("structured_outputs") && !b["structured_outputs"].is_null()) {
    const OJson& so = b["structured_outputs"];
    if (!so.is_object()) return schema("'structured_outputs' must be an object");
    for (auto it = so.begin(); it != so.end(); ++it) {
      if (it.value().is_null() || (it.value().is_boolean() && !it.value().get<bool>())) continue;
      if (it.key() == "choice") {
        INFERA_API_TRY(choices_of(it.value(), "structured_outputs.choice"));
        ++n_structured;
      } else if (it.key() == "json_object") {
        p.structured = CompletionParams::Structured::kJsonObject;
        ++n_structured;
      } else if (it.key() == "json") {
        INFERA_API_TRY(use_schema(it.value(), "structured_outputs.json"));
        ++n_structured;
      } else if (it.key() == "regex") {
        if (!it.value().is_string()) return schema("'structured_outputs.regex' must be a string");
        INFERA_API_TRY(use_regex(it.value().get<std::string>(), "'structured_outputs.regex'"));
        ++n_structured;
      } else if (it.key() == "grammar" || it.key() == "structural_tag") {
        return ApiError{501, "Not Implemented", fmt::format("structured_outputs.{} is not supported by this server yet", it.key())};
      }
    }
  }
  if (n_structured > 1)
    return bad("You can only use one kind of guided decoding ('guided_json', 'guided_regex' or 'guided_choice').");
  // A forced tool call ("required" or a named function) follows the tools' schema; it replaces a
  // JSON schema given beside it (as vLLM's tool schema wins over guided_json) and conflicts with
  // any other kind.
  if (is_chat) {
    OJson tool_schema;
    if (auto e = parse_tool_choice(b, p.tool_choice, tool_schema, auto_tools)) return ApiError{e->status, e->type, e->message};
    if (!tool_schema.is_null()) {
      if (n_structured > 0 && !structured_by_schema)
        return bad("You can only use one kind of guided decoding but multiple are specified: the tool_choice's schema and "
                   "another structured output (json_object, regex or choice)");
      INFERA_API_TRY(use_schema(tool_schema, "tool_choice"));
    }
  }
  for (const char* unsupported : {"use_beam_search", "guided_grammar", "logits_processors"}) {
    if (!b.contains(unsupported) || b[unsupported].is_null()) continue;
    const OJson& v = b[unsupported];
    const bool off = (v.is_boolean() && !v.get<bool>()) || (v.is_array() && v.empty());
    if (!off) return ApiError{501, "Not Implemented", fmt::format("'{}' is not supported by this server yet", unsupported)};
  }

  p.n = n.value_or(1);
  const double t = temperature.value_or(d.temperature.value_or(1.0));
  p.gen.sampling.temperature = static_cast<float>(t);
  p.gen.sampling.top_p = static_cast<float>(top_p.value_or(d.top_p.value_or(1.0)));
  p.gen.sampling.top_k = static_cast<int32_t>(top_k.value_or(d.top_k.value_or(0)));
  p.gen.min_p = static_cast<float>(min_p.value_or(d.min_p.value_or(0.0)));
  p.gen.repetition_penalty = static_cast<float>(rep.value_or(d.repetition_penalty.value_or(1.0)));
  p.gen.presence_penalty = static_cast<float>(pres.value_or(0.0));
  p.gen.frequency_penalty = static_cast<float>(freq.value_or(0.0));
  if (seed) {
    p.gen.has_seed = true;
    p.gen.sampling.seed = static_cast<uint64_t>(*seed);
  }
  // Completions default to 16 when max_tokens is absent; an explicit null means the rest of the context.
  p.max_tokens = is_chat ? (max_completion_tokens ? max_completion_tokens : max_tokens)
                 : b.contains("max_tokens") ? max_tokens
                                            : std::optional<int64_t>(16);
  if (!is_chat && p.echo && p.max_tokens && *p.max_tokens == 0) {  // the prompt alone, as vLLM: one token runs
    p.echo_only = true;
    p.max_tokens = 1;
  }
  p.gen.min_tokens = min_tokens.value_or(0);
  p.gen.eos_ids = d.eos_ids;
  // Validation with vLLM's messages, in vLLM's order.
  if (p.n < 1) return bad(fmt::format("n must be at least 1, got {}.", p.n));
  // One request may not flood the engine's queue (a million choices took gigabytes and stalled
  // every other client): OpenAI's bound.
  if (p.n > kMaxChoices) return bad(fmt::format("n must be at most {}, got {}.", kMaxChoices, p.n));
  if (best_of && *best_of < p.n)
    return bad(fmt::format("best_of must be greater than or equal to n, got n={} and best_of={}.", p.n, *best_of));
  if (best_of && *best_of != p.n)
    return ApiError(501, "Not Implemented", "best_of > n is not supported by this server yet");
  if (pres && (*pres < -2 || *pres > 2)) return bad(fmt::format("presence_penalty must be in [-2, 2], got {}.", py_float(*pres)));
  if (freq && (*freq < -2 || *freq > 2)) return bad(fmt::format("frequency_penalty must be in [-2, 2], got {}.", py_float(*freq)));
  if (rep && *rep <= 0) return bad(fmt::format("repetition_penalty must be greater than zero, got {}.", py_float(*rep)));
  if (t < 0) return bad(fmt::format("temperature must be non-negative, got {}.", py_float(t)));
  if (!(p.gen.sampling.top_p > 0 && p.gen.sampling.top_p <= 1))
    return bad(fmt::format("top_p must be in (0, 1], got {}.", py_float(top_p.value_or(0))));
  if (top_k && *top_k < -1) return bad(fmt::format("top_k must be 0 (disable), or at least 1, got {}.", *top_k));
  if (min_p && (*min_p < 0 || *min_p > 1)) return bad(fmt::format("min_p must be in [0, 1], got {}.", py_float(*min_p)));
  if (p.max_tokens && *p.max_tokens < 1) return bad(fmt::format("max_tokens must be at least 1, got {}.", *p.max_tokens));
  if (p.max_tokens && p.gen.min_tokens > *p.max_tokens)
    return bad(fmt::format("min_tokens must be less than or equal to max_tokens={}, got {}.", *p.max_tokens, p.gen.min_tokens));
  for (const std::string& s : p.stop)
    if (s.empty()) return bad("stop cannot contain an empty string.");
  if (t < 1e-5) {  // greedy
    if (p.n > 1) return bad(fmt::format("n must be 1 when using greedy sampling, got {}.", p.n));
    p.gen.sampling.temperature = 0;
  } else if (t < 0.01) {
    p.gen.sampling.temperature = 0.01f;
  }
  if (p.gen.sampling.top_k == -1) p.gen.sampling.top_k = 0;
  return std::nullopt;
}

int64_t py_len(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

TextAssembler::TextAssembler(const Tokenizer& tok, const CompletionParams& p) : tok_(tok), p_(p) {
  for (const std::string& s : p.stop) lookback_ = std::max(lookback_, static_cast<size_t>(std::max<int64_t>(py_len(s), 1) - 1));
  holdback_ = p.include_stop_str ? 0 : lookback_;  // vLLM holds text back only when a match is to be cut from it
}

namespace {
bool ends_with_replacement(const std::string& s) { return s.ends_with("\xEF\xBF\xBD"); }
}  // namespace

void TextAssembler::push(int32_t token) {
  if (stopped_) return;
  if (p_.skip_special_tokens && tok_.is_special(token)) return;
  bytes_ += tok_.token_bytes(token);
  // The text so far is taken as decoded once it no longer ends in U+FFFD (the decode stream's rule).
  if (!ends_with_replacement(tok::sanitize_utf8(std::string_view(bytes_).substr(decoded_)))) decoded_ = bytes_.size();
}

std::string TextAssembler::take(bool final) {
  if (stopped_) return {};
  // Stop strings: search the decoded region that could contain a new match.
  if (!p_.stop.empty()) {
    size_t from = emitted_;
    for (size_t k = 0; k < lookback_ && from > 0;) {  // a match may start up to lookback_ characters back
      --from;
      if ((static_cast<uint8_t>(bytes_[from]) & 0xC0) != 0x80) ++k;
    }
    size_t best = std::string::npos;
    const std::string_view text = std::string_view(bytes_).substr(0, decoded_);
    for (const std::string& s : p_.stop) {
      const size_t at = text.find(s, from);
      if (at != std::string::npos && (best == std::string::npos || at < best)) {
        best = at;
        stop_string_ = s;
      }
    }
    if (best != std::string::npos) {
      stopped_ = true;
      const size_t end = best + (p_.include_stop_str ? stop_string_.size() : 0);
      std::string out = end > emitted_ ? bytes_.substr(emitted_, end - emitted_) : std::string();
      emitted_ = std::max(emitted_, end);
      return tok::sanitize_utf8(out);
    }
  }
  size_t end = decoded_;
  if (!final)  // hold back the last holdback_ characters
    for (size_t k = 0; k < holdback_ && end > emitted_;) {
      --end;
      if ((static_cast<uint8_t>(bytes_[end]) & 0xC0) != 0x80) ++k;
    }
  if (end <= emitted_) return {};
  std::string out = tok::sanitize_utf8(std::string_view(bytes_).substr(emitted_, end - emitted_));
  emitted_ = end;
  return out;
}

}  // namespace infera::server
