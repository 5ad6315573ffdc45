#include "server/json_schema.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "engine/regex_dfa.h"

namespace infera {
namespace {

using OJson = nlohmann::ordered_json;

// Pieces of JSON text. A string's character: unescaped text, a short escape, or \uXXXX outside
// the surrogates (each escape one character; characters past U+FFFF are written as UTF-8).
constexpr const char* kStringChar =
    R"((?:[^"\\\x00-\x1F]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})))";
// In a string of bounded length each position costs automaton states, so there a character is
// text or a short escape (any character can be written as UTF-8 text).
constexpr const char* kBoundedStringChar = R"((?:[^"\\\x00-\x1F]|\\["\\/bfnrt]))";
constexpr const char* kInteger = "-?(?:0|[1-9][0-9]*)";
constexpr const char* kFraction = R"((?:\.[0-9]+)?)";
constexpr const char* kExponent = "(?:[eE][+-]?[0-9]{1,2})?";  // up to e99: every number a finite double
// Days that every year has in each month (no February 29th: a subset of valid dates).
constexpr const char* kDate =
    "[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";
constexpr const char* kTime = R"((?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?)";
constexpr const char* kOffset = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
// Formats as patterns whose every match is valid under the format's RFC (labels and lengths kept
// well inside the limits, so the automata stay small).
constexpr const char* kLabel = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,14}[a-zA-Z0-9])?";
constexpr const char* kOctet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
constexpr size_t kMaxPattern = size_t{256} << 10;
constexpr int kMaxDepth = 64;  // nested schemas (objects in arrays in objects ...)
constexpr int64_t kMaxBound = 1000000000000000000;  // 1e18: integer bounds past it are refused

std::string alt(const std::vector<std::string>& parts) {
  if (parts.size() == 1) return parts[0];
  std::string out = "(?:";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "|" : "") + parts[i];
  return out + ")";
}

// Decimal strings of one length from `lo` to `hi` (lo <= hi).
std::string digit_range(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "";
  if (lo == hi) return lo;
  const size_t rest = lo.size() - 1;
  if (lo.substr(1) == std::string(rest, '0') && hi.substr(1) == std::string(rest, '9'))
    return fmt::format("[{}-{}]", lo[0], hi[0]) + (rest ? fmt::format("[0-9]{{{}}}", rest) : "");
  if (lo[0] == hi[0]) return lo[0] + digit_range(lo.substr(1), hi.substr(1));
  std::vector<std::string> parts{lo[0] + digit_range(lo.substr(1), std::string(rest, '9'))};
  if (hi[0] - lo[0] > 1) parts.push_back(fmt::format("[{}-{}]", static_cast<char>(lo[0] + 1), static_cast<char>(hi[0] - 1)) +
                                         (rest ? fmt::format("[0-9]{{{}}}", rest) : ""));
  parts.push_back(hi[0] + digit_range(std::string(rest, '0'), hi.substr(1)));
  return alt(parts);
}

uint64_t pow10(size_t n) {
  uint64_t p = 1;
  while (n--) p *= 10;
  return p;
}

// Non-negative integers from a to b (b absent: no upper end), without leading zeros.
std::string nonneg_range(uint64_t a, std::optional<uint64_t> b) {
  const size_t da = std::to_string(a).size();
  std::vector<std::string> parts;
  const size_t db = b ? std::to_string(*b).size() : da;
  for (size_t len = da; len <= db; ++len) {
    const uint64_t lo = std::max<uint64_t>(a, len == 1 ? 0 : pow10(len - 1));
    const uint64_t hi = b ? std::min<uint64_t>(*b, pow10(len) - 1) : pow10(len) - 1;
    if (lo <= hi) parts.push_back(digit_range(std::to_string(lo), std::to_string(hi)));
  }
  if (!b) parts.push_back(fmt::format("[1-9][0-9]{{{},}}", da));
  return alt(parts);
}

std::string negative(const std::string& magnitude) {
  std::string out(1, '-');
  return out.append(magnitude);
}

// Integers in [lo, hi] (either end may be open); nullopt when none is.
std::optional<std::string> integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  if (!lo && !hi) return std::string(kInteger);
  std::vector<std::string> parts;
  const int64_t neg_hi = hi ? std::min<int64_t>(*hi, -1) : -1;  // negatives: [lo, neg_hi]
  if (!lo || *lo <= neg_hi)
    parts.push_back(negative(nonneg_range(static_cast<uint64_t>(-neg_hi), lo ? std::optional<uint64_t>(static_cast<uint64_t>(-*lo)) : std::nullopt)));
  const int64_t pos_lo = lo ? std::max<int64_t>(*lo, 0) : 0;  // the rest: [pos_lo, hi]
  if (!hi || *hi >= pos_lo)
    parts.push_back(nonneg_range(static_cast<uint64_t>(pos_lo), hi ? std::optional<uint64_t>(static_cast<uint64_t>(*hi)) : std::nullopt));
  if (parts.empty()) return std::nullopt;
  return alt(parts);
}

class SchemaCompiler {
 public:
  SchemaCompiler(const OJson& root, const JsonSchemaOptions& opt) : root_(root), opt_(opt), ws_("(?:" + opt.whitespace + ")") {}

  Result<std::string> run() {
    std::string re = value(root_, "", 0);
    if (!err_.empty()) return Status::error(err_);
    return re;
  }

 private:
  std::string fail(const std::string& path, const std::string& msg) {
    if (err_.empty()) err_ = fmt::format("unsupported JSON schema at '{}': {}", path.empty() ? "#" : path, msg);
    return "";
  }

  // Any JSON value, objects and arrays nested up to `depth` levels.
  std::string any(int depth) {
    std::vector<std::string> parts{string_re(), std::string(kInteger) + kFraction + kExponent, "true", "false", "null"};
    if (depth > 0) {
      const std::string v = any(depth - 1), key = string_re();
      parts.push_back(R"(\{)" + ws_ + "(?:" + key + ws_ + ":" + ws_ + v + "(?:" + ws_ + "," + ws_ + key + ws_ + ":" + ws_ + v + ")*)?" + ws_ + R"(\})");
      parts.push_back(R"(\[)" + ws_ + "(?:" + v + "(?:" + ws_ + "," + ws_ + v + ")*)?" + ws_ + R"(\])");
    }
    return alt(parts);
  }
  static std::string string_re() { return std::string("\"") + kStringChar + "*\""; }
  static std::string literal(const OJson& v) { return regex_escape(v.dump()); }

  const OJson* resolve(const std::string& ref, const std::string& path) {
    if (ref == "#") return &root_;
    if (ref.rfind("#/", 0) != 0) {
      fail(path, fmt::format("'$ref' {} is not a reference into this schema (only '#/...' is supported)", ref));
      return nullptr;
    }
    const OJson* at = &root_;
    size_t i = 2;
    while (i <= ref.size()) {
      size_t j = ref.find('/', i);
      if (j == std::string::npos) j = ref.size();
      std::string key;  // JSON pointer escapes: ~1 is '/', ~0 is '~'
      for (size_t k = i; k < j; ++k) {
        if (ref[k] == '~' && k + 1 < j && (ref[k + 1] == '0' || ref[k + 1] == '1')) key.push_back(ref[++k] == '1' ? '/' : '~');
        else key.push_back(ref[k]);
      }
      if (at->is_object() && at->contains(key)) at = &(*at)[key];
      else if (at->is_array() && !key.empty() && key.size() <= 9 && key.find_first_not_of("0123456789") == std::string::npos &&
               std::stoul(key) < at->size())
        at = &(*at)[std::stoul(key)];
      else {
        fail(path, fmt::format("'$ref' {} points to nothing", ref));
        return nullptr;
      }
      i = j + 1;
    }
    return at;
  }

  std::optional<int64_t> count_of(const OJson& s, const char* key, const std::string& path) {
    if (!s.contains(key)) return std::nullopt;
    if (!s[key].is_number_integer() || s[key].get<int64_t>() < 0) {
      fail(path, fmt::format("'{}' must be a non-negative integer", key));
      return std::nullopt;
    }
    return s[key].get<int64_t>();
  }

  std::optional<double> number_of(const OJson& s, const char* key, const std::string& path) {
    if (!s.contains(key)) return std::nullopt;
    if (!s[key].is_number()) {
      fail(path, fmt::format("'{}' must be a number", key));
      return std::nullopt;
    }
    return s[key].get<double>();
  }

  static bool has_type(const OJson& v, const OJson& type) {
    auto one = [&](const std::string& t) {
      if (t == "integer") return v.is_number_integer();
      if (t == "number") return v.is_number();
      if (t == "string") return v.is_string();
      if (t == "boolean") return v.is_boolean();
      if (t == "null") return v.is_null();
      if (t == "array") return v.is_array();
      if (t == "object") return v.is_object();
      return false;
    };
    if (type.is_string()) return one(type.get<std::string>());
    if (type.is_array())
      for (const OJson& t : type)
        if (t.is_string() && one(t.get<std::string>())) return true;
    return false;
  }
  // oneOf branches that no value can match twice: each a single 'type' (no two the same, integer
  // and number overlap), or objects with a required property whose 'const' differs.
  bool disjoint(const OJson& refs_or_branches) {
    OJson branches = OJson::array();  // $refs followed (pydantic's discriminated unions)
    for (const OJson& b : refs_or_branches) {
      const OJson* at = &b;
      for (int k = 0; k < 8 && at->is_object() && at->contains("$ref") && (*at)["$ref"].is_string(); ++k) {
        const OJson* next = resolve((*at)["$ref"].get<std::string>(), "");
        if (!next) return false;
        at = next;
      }
      branches.push_back(*at);
    }
    std::set<std::string> types;
    bool by_type = true;
    for (const OJson& b : branches) {
      const OJson* t = b.is_object() && b.contains("type") && b["type"].is_string() ? &b["type"] : nullptr;
      std::string name = t ? t->get<std::string>() : "";
      if (name == "integer") name = "number";
      if (!t || !types.insert(name).second) by_type = false;
    }
    if (by_type) return true;
    // A discriminator: one property name, required in every branch, with a different const in each.
    if (!branches[0].is_object() || !branches[0].contains("properties") || !branches[0]["properties"].is_object()) return false;
    for (auto it = branches[0]["properties"].begin(); it != branches[0]["properties"].end(); ++it) {
      std::set<std::string> seen;
      bool ok = true;
      for (const OJson& b : branches) {
        const bool required = b.contains("required") && b["required"].is_array() &&
                              std::find(b["required"].begin(), b["required"].end(), it.key()) != b["required"].end();
        const OJson* p = b.contains("properties") && b["properties"].is_object() && b["properties"].contains(it.key())
                             ? &b["properties"][it.key()] : nullptr;
        if (!required || !p || !p->is_object() || !p->contains("const") || !seen.insert((*p)["const"].dump()).second) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }

  // The pattern of a value; past kMaxPattern bytes an error (a pattern doubles with each level of
  // nested arrays and grows with the square of leading optional properties: refuse it early).
  std::string value(const OJson& s, const std::string& path, int refs) {
    if (depth_ >= kMaxDepth) return fail(path, fmt::format("the schema nests more than {} levels", kMaxDepth));
    ++depth_;
    std::string re = value_pattern(s, path, refs);
    --depth_;
    total_ += re.size();  // every part built, all levels: bounds the work of any schema
    if (total_ > 4 * kMaxPattern && err_.empty())
      return fail(path, fmt::format("the schema expands to patterns of more than {} KB in all; simplify it", 4 * kMaxPattern / 1024));
    return too_long(re, path) ? "" : re;
  }
  bool too_long(const std::string& re, const std::string& path) {
    if (re.size() <= kMaxPattern) return false;
    fail(path, fmt::format("the schema expands to a pattern of more than {} KB (nested arrays, long enums or "
                           "alternatives, many optional properties); simplify it", kMaxPattern / 1024));
    return true;
  }

  std::string value_pattern(const OJson& s, const std::string& path, int refs) {
    if (!err_.empty()) return "";
    if (s.is_boolean()) return s.get<bool>() ? any(opt_.any_depth) : fail(path, "the schema 'false' allows no value");
    if (!s.is_object()) return fail(path, "a schema must be an object or a boolean");
    static const std::set<std::string> kRefused = {
        "multipleOf", "uniqueItems", "not", "if", "then", "else", "patternProperties", "propertyNames",
        "dependentRequired", "dependentSchemas", "dependencies", "contains", "minContains", "maxContains",
        "minProperties", "maxProperties", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"};
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!kRefused.count(it.key())) continue;
      if (it.key() == "uniqueItems" && it.value() == false) continue;
      // Keys are strings anyway: propertyNames that says only that restricts nothing (zod's records).
      if (it.key() == "propertyNames" && (it.value() == true || it.value() == OJson::object() ||
                                          it.value() == OJson{{"type", "string"}}))
        continue;
      return fail(path, fmt::format("'{}' is not supported", it.key()));
    }
    // const, enum, anyOf, oneOf, allOf and $ref decide the value alone here: other checks beside
    // them are refused, not dropped (a "type" beside const / enum filters their values).
    static const std::set<std::string> kChecks = {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
        "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "const", "enum", "anyOf", "oneOf", "allOf", "$ref", "nullable"};
    for (const char* alone : {"$ref", "anyOf", "oneOf", "allOf", "const", "enum"}) {
      if (!s.contains(alone)) continue;
      for (auto it = s.begin(); it != s.end(); ++it) {
        const bool typed_literal = (std::string_view(alone) == "const" || std::string_view(alone) == "enum") && it.key() == "type";
        if (it.key() != alone && kChecks.count(it.key()) && !typed_literal)
          return fail(path, fmt::format("'{}' together with '{}' is not supported", alone, it.key()));
      }
    }
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) return fail(path, "'$ref' must be a string");
      if (refs >= opt_.max_ref_depth)
        return fail(path, fmt::format("'$ref' nests more than {} levels (a recursive schema)", opt_.max_ref_depth));
      const OJson* target = resolve(s["$ref"].get<std::string>(), path);
      if (!target) return "";
      return value(*target, s["$ref"].get<std::string>(), refs + 1);
    }
    if (s.contains("const") || s.contains("enum")) {
      const bool is_const = s.contains("const");
      if (!is_const && (!s["enum"].is_array() || s["enum"].empty())) return fail(path, "'enum' must be a non-empty array");
      const OJson values = is_const ? OJson::array({s["const"]}) : s["enum"];
      std::vector<std::string> parts;
      for (const OJson& v : values)
        if (!s.contains("type") || has_type(v, s["type"])) parts.push_back(literal(v));
      if (parts.empty()) return fail(path, fmt::format("no value of '{}' has the 'type'", is_const ? "const" : "enum"));
      return alt(parts);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      if (!s[key].is_array() || s[key].empty()) return fail(path, fmt::format("'{}' must be a non-empty array", key));
      if (std::string_view(key) == "oneOf" && !disjoint(s[key]))
        return fail(path, "'oneOf' is supported where no value can match two of its schemas (different types, or "
                          "objects told apart by a required 'const' property); use 'anyOf'");
      std::vector<std::string> parts;
      for (size_t i = 0; i < s[key].size(); ++i) parts.push_back(value(s[key][i], fmt::format("{}/{}/{}", path, key, i), refs));
      return alt(parts);
    }
    if (s.contains("allOf")) {
      if (!s["allOf"].is_array() || s["allOf"].size() != 1) return fail(path, "'allOf' is supported with exactly one schema");
      return value(s["allOf"][0], path + "/allOf/0", refs);
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      if (s["type"].is_string()) types.push_back(s["type"].get<std::string>());
      else if (s["type"].is_array())
        for (const OJson& t : s["type"]) {
          if (!t.is_string()) return fail(path, "'type' must be a string or an array of strings");
          types.push_back(t.get<std::string>());
        }
      else return fail(path, "'type' must be a string or an array of strings");
    } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
      types.push_back("object");
    } else if (s.contains("items") || s.contains("prefixItems")) {
      types.push_back("array");
    } else if (s.contains("pattern") || s.contains("format") || s.contains("minLength") || s.contains("maxLength")) {
      types.push_back("string");
    } else {
      return any(opt_.any_depth);
    }
    if (s.value("nullable", false) && std::find(types.begin(), types.end(), "null") == types.end()) types.push_back("null");
    std::vector<std::string> parts;
    for (const std::string& t : types) parts.push_back(typed(s, t, path, refs));
    return alt(parts);
  }

  std::string typed(const OJson& s, const std::string& type, const std::string& path, int refs) {
    if (type == "string") return string_value(s, path);
    if (type == "integer" || type == "number") return number_value(s, type == "integer", path);
    if (type == "boolean") return "(?:true|false)";
    if (type == "null") return "null";
    if (type == "array") return array_value(s, path, refs);
    if (type == "object") return object_value(s, path, refs);
    return fail(path, fmt::format("unknown type '{}'", type));
  }

  // A string format as the pattern of its content (no quotes); nullopt where the format is only
  // an annotation (unknown names); an error for formats it cannot enforce.
  std::optional<std::string> format_content(const std::string& format, const std::string& path) {
    if (format.empty()) return std::nullopt;
    if (format == "date-time") return fmt::format("{}T{}{}", kDate, kTime, kOffset);
    if (format == "date") return std::string(kDate);
    if (format == "time") return fmt::format("{}{}", kTime, kOffset);  // RFC 3339 full-time: with its offset
    if (format == "uuid") return std::string("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    const std::string host = fmt::format(R"({0}(?:\.{0}){{0,3}})", kLabel);
    if (format == "hostname") return host;
    if (format == "ipv4") return fmt::format(R"((?:{0}\.){{3}}{0})", kOctet);
    if (format == "email")
      return fmt::format(R"([a-zA-Z0-9_+-]{{1,16}}(?:\.[a-zA-Z0-9_+-]{{1,16}}){{0,2}}@(?:{}\.){{1,3}}[a-zA-Z]{{2,12}})", kLabel);
    if (format == "uri")
      return fmt::format(R"([a-zA-Z][a-zA-Z0-9+.-]{{0,15}}://{}(?::[0-9]{{1,5}})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]{{0,24}}){{0,6}})"
                         R"((?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]{{0,48}})?)", host);
    static const std::set<std::string> kUnenforced = {"ipv6", "duration", "uri-reference", "iri", "iri-reference",
                                                      "idn-email", "idn-hostname", "json-pointer", "relative-json-pointer",
                                                      "regex", "uri-template"};
    if (kUnenforced.count(format)) fail(path, fmt::format("'format' '{}' is not supported", format));
    return std::nullopt;
  }

  std::string string_value(const OJson& s, const std::string& path) {
    const std::string format = s.contains("format") && s["format"].is_string() ? s["format"].get<std::string>() : "";
    const std::optional<std::string> formatted = format_content(format, path);
    if (!err_.empty()) return "";
    const bool lengths = s.contains("minLength") || s.contains("maxLength");
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return fail(path, "'pattern' must be a string");
      if (lengths) return fail(path, "'pattern' together with 'minLength' or 'maxLength' is not supported");
      Result<std::string> inner = regex_for_json_string(s["pattern"].get<std::string>());
      if (!inner) return fail(path, fmt::format("'pattern': {}", inner.error()));
      if (!formatted) return "\"" + *inner + "\"";
      // Both (zod writes a pattern beside its formats): whichever of the two implies the other.
      RegexLimits small;
      small.max_dfa_states = 5000;
      small.max_work = 5000000;
      Result<std::shared_ptr<const ByteDfa>> p = compile_regex(*inner, small), f = compile_regex(*formatted, small);
      if (p && f && regex_includes(**f, **p).value_or(false)) return "\"" + *inner + "\"";
      if (p && f && regex_includes(**p, **f).value_or(false)) return "\"" + *formatted + "\"";
      return fail(path, fmt::format("'pattern' together with 'format' '{}' is supported where one implies the other", format));
    }
    if (formatted) {
      if (lengths) return fail(path, fmt::format("'format' '{}' together with 'minLength' or 'maxLength' is not supported", format));
      return "\"" + *formatted + "\"";
    }
    const std::optional<int64_t> lo = count_of(s, "minLength", path), hi = count_of(s, "maxLength", path);
    if (!err_.empty()) return "";
    if (!lo && !hi) return string_re();
    if (lo.value_or(0) > 1000 || hi.value_or(0) > 1000) return fail(path, "string lengths above 1000 are not supported");
    if (hi && *hi < lo.value_or(0)) return fail(path, "'maxLength' is below 'minLength'");
    return fmt::format("\"{}{{{},{}}}\"", kBoundedStringChar, lo.value_or(0), hi ? std::to_string(*hi) : "");
  }

  std::string number_value(const OJson& s, bool integer, const std::string& path) {
    std::optional<double> min = number_of(s, "minimum", path), max = number_of(s, "maximum", path);
    std::optional<double> xmin, xmax;
    // exclusiveMinimum / exclusiveMaximum: a number (draft 6 on) or a flag on minimum / maximum (draft 4).
    if (s.contains("exclusiveMinimum")) {
      if (!s["exclusiveMinimum"].is_boolean()) xmin = number_of(s, "exclusiveMinimum", path);
      else if (s["exclusiveMinimum"].get<bool>()) xmin = std::exchange(min, std::nullopt);
    }
    if (s.contains("exclusiveMaximum")) {
      if (!s["exclusiveMaximum"].is_boolean()) xmax = number_of(s, "exclusiveMaximum", path);
      else if (s["exclusiveMaximum"].get<bool>()) xmax = std::exchange(max, std::nullopt);
    }
    if (!err_.empty()) return "";
    if (!min && !max && !xmin && !xmax) return integer ? std::string(kInteger) : std::string(kInteger) + kFraction + kExponent;
    for (const auto& b : {min, max, xmin, xmax})
      if (b && std::fabs(*b) > static_cast<double>(kMaxBound)) return fail(path, "bounds beyond 1e18 are not supported");
    if (integer) {
      // The integers within the bounds.
      std::optional<int64_t> lo, hi;
      if (min) lo = static_cast<int64_t>(std::ceil(*min));
      if (xmin) lo = std::max(lo.value_or(INT64_MIN), static_cast<int64_t>(std::floor(*xmin)) + 1);
      if (max) hi = static_cast<int64_t>(std::floor(*max));
      if (xmax) hi = std::min(hi.value_or(INT64_MAX), static_cast<int64_t>(std::ceil(*xmax)) - 1);
      std::optional<std::string> r = integer_range(lo, hi);
      return r ? *r : fail(path, "no integer lies within the bounds");
    }
    // Numbers: whole bounds only, written without an exponent: the integer part decides.
    for (const auto& b : {min, max, xmin, xmax})
      if (b && *b != std::floor(*b)) return fail(path, "bounds on a 'number' must be whole numbers (or use 'integer')");
    std::optional<int64_t> lo = min ? std::optional<int64_t>(static_cast<int64_t>(*min)) : std::nullopt;
    std::optional<int64_t> hi = max ? std::optional<int64_t>(static_cast<int64_t>(*max)) : std::nullopt;
    const bool lo_open = xmin && (!lo || *xmin >= *lo), hi_open = xmax && (!hi || *xmax <= *hi);
    if (lo_open) lo = static_cast<int64_t>(*xmin);
    if (hi_open) hi = static_cast<int64_t>(*xmax);
    std::vector<std::string> parts;
    // Whole values: the integers within (open ends excluded), with an optional zero fraction.
    std::optional<int64_t> wlo = lo, whi = hi;
    if (lo_open) wlo = *lo + 1;
    if (hi_open) whi = *hi - 1;
    if (std::optional<std::string> w = integer_range(wlo, whi)) parts.push_back(*w + R"((?:\.0+)?)");
    // Values strictly between p and p + 1 (p >= 0: "p.f"; below zero: "-m.f", between -(m+1) and -m),
    // f with a non-zero digit: p in [lo, hi - 1].
    const std::string frac = R"(\.[0-9]*[1-9][0-9]*)";
    const std::optional<int64_t> phi = hi ? std::optional<int64_t>(*hi - 1) : std::nullopt;
    const int64_t plo = std::max<int64_t>(lo.value_or(0), 0);
    if (!phi || *phi >= plo)
      parts.push_back(nonneg_range(static_cast<uint64_t>(plo), phi ? std::optional<uint64_t>(static_cast<uint64_t>(*phi)) : std::nullopt) + frac);
    // -m.f for m in [max(0, -hi), -lo - 1]
    const int64_t mlo = hi ? std::max<int64_t>(0, -*hi) : 0;
    const std::optional<int64_t> mhi = lo ? std::optional<int64_t>(-*lo - 1) : std::nullopt;
    if (!mhi || *mhi >= mlo)
      parts.push_back(negative(nonneg_range(static_cast<uint64_t>(mlo), mhi ? std::optional<uint64_t>(static_cast<uint64_t>(*mhi)) : std::nullopt) + frac));
    if (parts.empty()) return fail(path, "no number lies within the bounds");
    return alt(parts);
  }

  std::string array_value(const OJson& s, const std::string& path, int refs) {
    const int64_t lo = count_of(s, "minItems", path).value_or(0);
    std::optional<int64_t> hi = count_of(s, "maxItems", path);
    if (!err_.empty()) return "";
    if (hi && *hi < lo) return fail(path, "'maxItems' is below 'minItems'");
    const std::string open = R"(\[)" + ws_, close = ws_ + R"(\])", comma = ws_ + "," + ws_;
    std::vector<std::string> fixed;  // prefixItems: the first items, in order
    if (s.contains("prefixItems")) {
      if (!s["prefixItems"].is_array()) return fail(path, "'prefixItems' must be an array");
      for (size_t i = 0; i < s["prefixItems"].size(); ++i)
        fixed.push_back(value(s["prefixItems"][i], fmt::format("{}/prefixItems/{}", path, i), refs));
    }
    std::optional<std::string> item;  // the rest (none when items is false)
    if (!s.contains("items") || s["items"] == true) item = any(opt_.any_depth);
    else if (s["items"].is_array()) return fail(path, "'items' as an array (draft 4 tuples) is not supported; use 'prefixItems'");
    else if (s["items"] != false) item = value(s["items"], path + "/items", refs);
    if (!err_.empty()) return "";
    if (fixed.empty()) {
      if (!item && lo > 0) return fail(path, "'items' is false but 'minItems' asks for items");
      if (!item || (hi && *hi == 0)) return open + close;
      if (lo > 1000 || hi.value_or(0) > 1000) return fail(path, "array lengths above 1000 are not supported");
      const std::string more = hi ? fmt::format("{{{},{}}}", std::max<int64_t>(lo - 1, 0), *hi - 1)
                                  : fmt::format("{{{},}}", std::max<int64_t>(lo - 1, 0));
      const std::string items = hi && *hi == 1 ? *item : *item + "(?:" + comma + *item + ")" + more;
      return open + (lo == 0 ? "(?:" + items + ")?" : items) + close;
    }
    // Tuples: the prefix items in order (an array may stop after any of them once minItems is
    // met), then further items if 'items' allows them.
    const int64_t n = static_cast<int64_t>(fixed.size());
    if (!item && lo > n) return fail(path, "'minItems' asks for more items than 'prefixItems' gives and 'items' is false");
    const int64_t max_items = hi ? *hi : (item ? -1 : n);
    if (max_items >= 0 && max_items < n) fixed.resize(static_cast<size_t>(max_items));
    std::string tail;
    if (item && (max_items < 0 || max_items > n)) {
      if (max_items > 1000) return fail(path, "array lengths above 1000 are not supported");
      const int64_t min_more = std::max<int64_t>(lo - n, 0);
      tail = "(?:" + comma + *item + ")" + (max_items < 0 ? fmt::format("{{{},}}", min_more) : fmt::format("{{{},{}}}", min_more, max_items - n));
    }
    // Build from the end: after item k, either stop (if k + 1 >= lo) or continue.
    std::string rest = tail;
    for (int64_t k = static_cast<int64_t>(fixed.size()) - 1; k >= 1; --k) {
      const std::string next = comma + fixed[static_cast<size_t>(k)] + rest;
      rest = k >= lo ? "(?:" + next + ")?" : next;
      if (too_long(rest, path)) return "";
    }
    if (fixed.empty()) return open + close;
    const std::string body = fixed[0] + rest;
    return open + (lo == 0 ? "(?:" + body + ")?" : body) + close;
  }

  std::string object_value(const OJson& s, const std::string& path, int refs) {
    const std::string open = R"(\{)" + ws_, close = ws_ + R"(\})", comma = ws_ + "," + ws_, colon = ws_ + ":" + ws_;
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return fail(path, "'required' must be an array of strings");
      for (const OJson& r : s["required"]) {
        if (!r.is_string()) return fail(path, "'required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    struct Prop {
      std::string re;
      bool required;
    };
    std::vector<Prop> props;
    std::set<std::string> named;
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) return fail(path, "'properties' must be an object");
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
        const std::string v = value(it.value(), path + "/properties/" + it.key(), refs);
        props.push_back({literal(it.key()) + colon + v, required.count(it.key()) > 0});
        named.insert(it.key());
      }
    }
    static const OJson kTrue(true);
    const OJson& ap = s.contains("additionalProperties") ? s["additionalProperties"] : kTrue;
    for (const std::string& r : required) {  // required but not in 'properties': as additionalProperties says
      if (named.count(r)) continue;
      if (ap == false) return fail(path, fmt::format("'{}' is required, but not in 'properties' and additionalProperties is false", r));
      props.push_back({literal(r) + colon + value(ap, path + "/additionalProperties", refs), true});
    }
    if (!err_.empty()) return "";
    if (props.empty()) {
      // Listed properties and nothing else unless additionalProperties says otherwise, also when
      // the list is empty (a function without parameters: {"type": "object", "properties": {}}).
      if (ap == false || (s.contains("properties") && !s.contains("additionalProperties"))) return open + close;
      const std::string v = value(ap, path + "/additionalProperties", refs);
      const std::string kv = string_re() + colon + v;
      return open + "(?:" + kv + "(?:" + comma + kv + ")*)?" + close;
    }
    // Properties in the schema's order; optional ones may be left out. after(i): the properties
    // from i on once one has been written (each preceded by a comma); first(i): none written yet.
    std::string after, first;  // after(i + 1), first(i + 1) while i counts down
    for (size_t i = props.size(); i-- > 0;) {
      const std::string& p = props[i].re;
      first = props[i].required ? p + after : alt({p + after, first});
      after = (props[i].required ? comma + p : "(?:" + comma + p + ")?") + after;
      if (too_long(first, path) || too_long(after, path)) return "";
    }
    return open + first + close;
  }

  const OJson& root_;
  const JsonSchemaOptions& opt_;
  std::string ws_;
  std::string err_;
  int depth_ = 0;
  size_t total_ = 0;
};

}  // namespace

Result<std::string> json_schema_regex(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opt) {
  return SchemaCompiler(schema, opt).run();
}

}  // namespace infera
