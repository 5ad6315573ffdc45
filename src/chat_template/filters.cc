// Jinja2 built-in filters and tests (the subset chat templates use), plus transformers' `tojson`.
#include <algorithm>
#include <cmath>
#include <map>

#include "chat_template/pystr.h"
#include "chat_template/render.h"

namespace infera::jinja {
namespace {

using Args = std::vector<std::optional<Value>>;
using FilterFn = Result<Value> (*)(Renderer&, const Value&, CallArgs&);

bool flag(const std::optional<Value>& v) { return v && v->truthy(); }

Result<Value> f_tojson(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonOptions o;
  o.ensure_ascii = flag(a[0]);
  if (a[1] && !a[1]->is_none()) {
    o.has_indent = true;
    o.item_sep = ",";
    if (a[1]->is_string()) {
      o.indent = a[1]->str();
    } else {
      INFERA_ASSIGN_OR_RETURN(int64_t n, to_index(*a[1], "indent"));
      o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1000)), ' ');
    }
  }
  if (a[2] && !a[2]->is_none()) {
    if (!a[2]->is_list() || a[2]->items().size() != 2 || !a[2]->items()[0].is_string() || !a[2]->items()[1].is_string())
      return error("separators must be a pair of strings");
    o.item_sep = a[2]->items()[0].str();
    o.key_sep = a[2]->items()[1].str();
  }
  o.sort_keys = flag(a[3]);
  INFERA_ASSIGN_OR_RETURN(std::string s, to_json(v, o));
  INFERA_RETURN_IF_ERROR(r.check_size(s.size()));
  return Value::string(std::move(s));
}

Result<Value> f_trim(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("trim", args, {"chars"}));
  if (a[0] && !a[0]->is_none() && !a[0]->is_string()) return error("trim() chars must be a string");
  const std::string* chars = (a[0] && a[0]->is_string()) ? &a[0]->str() : nullptr;
  return Value::string(pystr::strip(v.to_str(), chars, true, true));
}

Result<Value> f_length(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("length", args, {}));
  if (v.is_string()) return Value::integer(static_cast<int64_t>(pystr::length(v.str())));
  if (v.is_list()) return Value::integer(static_cast<int64_t>(v.items().size()));
  if (v.is_dict()) return Value::integer(static_cast<int64_t>(v.dict_ref().size()));
  if (v.is_undefined()) return Value::integer(0);
  return error("object of type '{}' has no len()", v.type_name());
}

Result<Value> f_string(Renderer&, const Value& v, CallArgs&) { return Value::string(v.to_str()); }
Result<Value> f_lower(Renderer&, const Value& v, CallArgs&) { return Value::string(pystr::lower(v.to_str())); }
Result<Value> f_upper(Renderer&, const Value& v, CallArgs&) { return Value::string(pystr::upper(v.to_str())); }
Result<Value> f_capitalize(Renderer&, const Value& v, CallArgs&) {
  return Value::string(pystr::capitalize(v.to_str()));
}
Result<Value> f_safe(Renderer&, const Value& v, CallArgs&) { return v; }

Result<Value> f_title(Renderer&, const Value& v, CallArgs&) {
  // Jinja splits on runs of whitespace and -({[< and capitalizes each piece.
  std::u32string u = pystr::decode(v.to_str());
  std::u32string out;
  auto is_sep = [](char32_t c) { return pystr::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  bool word_start = true;
  for (char32_t c : u) {
    if (is_sep(c)) {
      out.push_back(c);
      word_start = true;
    } else {
      out.push_back(word_start ? pystr::to_upper(c) : pystr::to_lower(c));
      word_start = false;
    }
  }
  return Value::string(pystr::encode(out));
}

Result<Value> f_escape(Renderer&, const Value& v, CallArgs&) {
  std::string out;
  for (char c : v.to_str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return Value::string(std::move(out));
}

Result<Value> f_replace(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("replace", args, {"old", "new", "count"}));
  if (!a[0] || !a[1]) return error("replace() requires 'old' and 'new'");
  int64_t count = -1;
  if (a[2] && !a[2]->is_none()) {
    INFERA_ASSIGN_OR_RETURN(count, to_index(*a[2], "count"));
  }
  std::string out = pystr::replace(v.to_str(), a[0]->to_str(), a[1]->to_str(), count);
  INFERA_RETURN_IF_ERROR(r.check_size(out.size()));
  return Value::string(std::move(out));
}

// Jinja's attribute getter: dotted path, integer parts index lists; uses getitem semantics.
Result<Value> attr_path(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return get_item(item, attribute);
  Value cur = item;
  static const std::string kDot = ".";
  for (const std::string& part : pystr::split(attribute.str(), &kDot, -1)) {
    bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    Value key = digits ? Value::integer(std::stoll(part)) : Value::string(part);
    INFERA_ASSIGN_OR_RETURN(cur, get_item(cur, key));
  }
  return cur;
}

Result<Value> f_join(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("join", args, {"d", "attribute"}));
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  std::string sep = a[0] ? a[0]->to_str() : "";
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (a[1] && !a[1]->is_none()) {
      INFERA_ASSIGN_OR_RETURN(item, attr_path(item, *a[1]));
    }
    if (i) out += sep;
    out += item.to_str();
    INFERA_RETURN_IF_ERROR(r.check_size(out.size()));
  }
  return Value::string(std::move(out));
}

Result<Value> f_first(Renderer&, const Value& v, CallArgs&) {
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Result<Value> f_last(Renderer&, const Value& v, CallArgs&) {
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Result<Value> f_list(Renderer&, const Value& v, CallArgs&) {
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  return Value::list(std::move(items));
}

Result<Value> f_default(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("default", args, {"default_value", "boolean"}));
  bool use_default = v.is_undefined() || (flag(a[1]) && !v.truthy());
  if (!use_default) return v;
  return a[0] ? *a[0] : Value::string("");
}

Result<Value> f_items(Renderer&, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) return error("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict_ref().entries()) out.push_back(Value::tuple({k, val}));
  return Value::list(std::move(out));
}

// Sort key: lower-cased strings unless case-sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(pystr::lower(v.str()));
  return v;
}

Status sort_values(std::vector<Value>& items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Status failure;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    auto c = compare(keys[x], keys[y]);
    if (!c) {
      if (failure) failure = c.status();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  INFERA_RETURN_IF_ERROR(failure);
  std::vector<Value> sorted;
  for (size_t i : order) sorted.push_back(items[i]);
  items = std::move(sorted);
  return Status::ok();
}

Result<Value> f_sort(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("sort", args, {"reverse", "case_sensitive", "attribute"}));
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  std::vector<Value> keys;
  for (const Value& item : items) {
    Value k = item;
    if (a[2] && !a[2]->is_none()) {
      INFERA_ASSIGN_OR_RETURN(k, attr_path(item, *a[2]));
    }
    keys.push_back(sort_key(k, flag(a[1])));
  }
  INFERA_RETURN_IF_ERROR(sort_values(items, keys, flag(a[0])));
  return Value::list(std::move(items));
}

Result<Value> f_dictsort(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("dictsort", args, {"case_sensitive", "by", "reverse"}));
  if (!v.is_dict()) return error("dictsort requires a mapping");
  bool by_value = a[1] && a[1]->is_string() && a[1]->str() == "value";
  std::vector<Value> items, keys;
  for (const auto& [k, val] : v.dict_ref().entries()) {
    items.push_back(Value::tuple({k, val}));
    keys.push_back(sort_key(by_value ? val : k, flag(a[0])));
  }
  INFERA_RETURN_IF_ERROR(sort_values(items, keys, flag(a[2])));
  return Value::list(std::move(items));
}

Result<Value> f_unique(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("unique", args, {"case_sensitive", "attribute"}));
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  std::vector<Value> out, seen;
  for (const Value& item : items) {
    Value k = item;
    if (a[1] && !a[1]->is_none()) {
      INFERA_ASSIGN_OR_RETURN(k, attr_path(item, *a[1]));
    }
    k = sort_key(k, flag(a[0]));
    bool dup = false;
    for (const Value& s : seen) dup |= equals(s, k);
    if (dup) continue;
    seen.push_back(k);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Result<Value> f_minmax(const Value& v, CallArgs& args, bool want_max) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args(want_max ? "max" : "min", args, {"case_sensitive", "attribute"}));
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  std::vector<Value> keys;
  for (const Value& item : items) {
    Value k = item;
    if (a[1] && !a[1]->is_none()) {
      INFERA_ASSIGN_OR_RETURN(k, attr_path(item, *a[1]));
    }
    keys.push_back(sort_key(k, flag(a[0])));
  }
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    INFERA_ASSIGN_OR_RETURN(int c, compare(keys[i], keys[best]));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}
Result<Value> f_min(Renderer&, const Value& v, CallArgs& args) { return f_minmax(v, args, false); }
Result<Value> f_max(Renderer&, const Value& v, CallArgs& args) { return f_minmax(v, args, true); }

Result<Value> f_sum(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("sum", args, {"attribute", "start"}));
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  Value total = a[1] ? *a[1] : Value::integer(0);
  for (const Value& item : items) {
    Value x = item;
    if (a[0] && !a[0]->is_none()) {
      INFERA_ASSIGN_OR_RETURN(x, attr_path(item, *a[0]));
    }
    INFERA_ASSIGN_OR_RETURN(total, binary_op("+", total, x, r.limits()));
  }
  return total;
}

Result<Value> f_reverse(Renderer&, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::u32string u = pystr::decode(v.str());
    return Value::string(pystr::encode(std::u32string(u.rbegin(), u.rend())));
  }
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  return Value::list(std::vector<Value>(items.rbegin(), items.rend()));
}

// Python int(str): optional sign, digits with single underscores, surrounding whitespace.
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string s = pystr::strip(text, nullptr, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isalnum(static_cast<unsigned char>(s[i - 1]))) continue;
    digits.push_back(s[i]);
  }
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno || *end || std::isspace(static_cast<unsigned char>(digits[0]))) return std::nullopt;
  return v;
}

std::optional<double> parse_float(const std::string& text) {
  std::string s = pystr::strip(text, nullptr, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (*end || (s.size() > 1 && (s[1] == 'x' || s[1] == 'X'))) return std::nullopt;
  return d;
}

Result<Value> f_int(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("int", args, {"default", "base"}));
  Value dflt = a[0] ? *a[0] : Value::integer(0);
  int base = 10;
  if (a[1]) {
    INFERA_ASSIGN_OR_RETURN(base, to_index(*a[1], "base"));
  }
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double()) || std::fabs(v.as_double()) > 9.2e18) return dflt;
    return Value::integer(static_cast<int64_t>(v.as_double()));
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.str(), base)) return Value::integer(*i);
    if (auto d = parse_float(v.str()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18)
      return Value::integer(static_cast<int64_t>(*d));
  }
  return dflt;
}

Result<Value> f_float(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("float", args, {"default"}));
  if (v.is_number()) return Value::real(v.as_double());
  if (v.is_string())
    if (auto d = parse_float(v.str())) return Value::real(*d);
  return a[0] ? *a[0] : Value::real(0.0);
}

Result<Value> f_abs(Renderer&, const Value& v, CallArgs&) {
  if (v.is_float()) return Value::real(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) return error("integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  return error("bad operand type for abs(): '{}'", v.type_name());
}

Result<Value> f_round(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("round", args, {"precision", "method"}));
  int64_t precision = 0;
  if (a[0]) {
    INFERA_ASSIGN_OR_RETURN(precision, to_index(*a[0], "precision"));
  }
  std::string method = a[1] ? a[1]->to_str() : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    return error("method must be common, ceil or floor");
  if (!v.is_number()) return error("type {} doesn't define __round__ method", v.type_name());
  if (method == "common" && !v.is_float()) return Value::integer(v.as_int());
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value::real(r / scale);
}

Result<Value> f_indent(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("indent", args, {"width", "first", "blank"}));
  std::string ind = "    ";
  if (a[0] && a[0]->is_string()) {
    ind = a[0]->str();
  } else if (a[0]) {
    INFERA_ASSIGN_OR_RETURN(int64_t w, to_index(*a[0], "width"));
    ind = std::string(static_cast<size_t>(std::clamp<int64_t>(w, 0, 10000)), ' ');
  }
  std::vector<std::string> lines = pystr::splitlines(v.to_str() + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    if (i && (flag(a[2]) || !lines[i].empty())) out += ind;
    out += lines[i];
    INFERA_RETURN_IF_ERROR(r.check_size(out.size()));
  }
  if (flag(a[1])) out = ind + out;
  return Value::string(std::move(out));
}

Result<Value> f_center(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("center", args, {"width"}));
  int64_t width = 80;
  if (a[0]) {
    INFERA_ASSIGN_OR_RETURN(width, to_index(*a[0], "width"));
  }
  std::string s = v.to_str();
  int64_t len = static_cast<int64_t>(pystr::length(s));
  if (width <= len) return Value::string(s);
  INFERA_RETURN_IF_ERROR(r.check_size(static_cast<size_t>(width)));
  int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
  return Value::string(std::string(left, ' ') + s + std::string(pad - left, ' '));
}

Result<Value> f_wordcount(Renderer&, const Value& v, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : pystr::decode(v.to_str())) {
    bool w = c == '_' || (c >= '0' && c <= '9') || pystr::is_cased(c) || c > 0x2E80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

Result<Value> select_impl(Renderer& r, const Value& v, CallArgs& args, bool attr, bool keep_matches) {
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  CallArgs rest;
  rest.kw = args.kw;
  size_t idx = 0;
  std::optional<Value> attribute;
  if (attr) {
    if (args.pos.empty()) return error("missing parameter for attribute name");
    attribute = args.pos[idx++];
  }
  std::optional<std::string> test;
  if (idx < args.pos.size()) test = args.pos[idx++].to_str();
  rest.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(idx), args.pos.end());
  if (test && !is_known_test(*test)) return error("no test named '{}'", *test);
  std::vector<Value> out;
  for (const Value& item : items) {
    Value x = item;
    if (attribute) {
      INFERA_ASSIGN_OR_RETURN(x, attr_path(item, *attribute));
    }
    bool ok = x.truthy();
    if (test) {
      CallArgs targs = rest;
      INFERA_ASSIGN_OR_RETURN(ok, apply_test(r, *test, x, targs));
    }
    if (ok == keep_matches) out.push_back(item);
  }
  return Value::list(std::move(out));
}
Result<Value> f_select(Renderer& r, const Value& v, CallArgs& a) { return select_impl(r, v, a, false, true); }
Result<Value> f_reject(Renderer& r, const Value& v, CallArgs& a) { return select_impl(r, v, a, false, false); }
Result<Value> f_selectattr(Renderer& r, const Value& v, CallArgs& a) { return select_impl(r, v, a, true, true); }
Result<Value> f_rejectattr(Renderer& r, const Value& v, CallArgs& a) { return select_impl(r, v, a, true, false); }

Result<Value> f_map(Renderer& r, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  std::vector<Value> out;
  if (args.pos.empty()) {
    std::optional<Value> attribute, dflt;
    for (auto& [k, val] : args.kw) {
      if (k == "attribute") attribute = val;
      else if (k == "default") dflt = val;
      else return error("map() got an unexpected keyword argument '{}'", k);
    }
    if (!attribute) return error("map() requires a filter name or attribute=");
    for (const Value& item : items) {
      INFERA_ASSIGN_OR_RETURN(Value x, attr_path(item, *attribute));
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    }
    return Value::list(std::move(out));
  }
  std::string name = args.pos[0].to_str();
  if (!is_known_filter(name)) return error("no filter named '{}'", name);
  for (const Value& item : items) {
    CallArgs fargs;
    fargs.pos.assign(args.pos.begin() + 1, args.pos.end());
    fargs.kw = args.kw;
    INFERA_ASSIGN_OR_RETURN(Value x, apply_filter(r, name, item, fargs));
    out.push_back(std::move(x));
  }
  return Value::list(std::move(out));
}

Result<Value> f_attr(Renderer&, const Value& v, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(Args a, bind_args("attr", args, {"name"}));
  if (!a[0] || !a[0]->is_string()) return error("attr() requires an attribute name");
  if (v.is_dict() && v.dict_ref().find(*a[0])) return Value::undefined(fmt::format("'dict object' has no attribute '{}'", a[0]->str()));
  return get_attr(v, a[0]->str());
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> kFilters = {
      {"tojson", f_tojson}, {"trim", f_trim}, {"length", f_length}, {"count", f_length}, {"string", f_string},
      {"lower", f_lower}, {"upper", f_upper}, {"title", f_title}, {"capitalize", f_capitalize},
      {"replace", f_replace}, {"join", f_join}, {"first", f_first}, {"last", f_last}, {"list", f_list},
      {"default", f_default}, {"d", f_default}, {"items", f_items}, {"dictsort", f_dictsort},
      {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr}, {"select", f_select}, {"reject", f_reject},
      {"map", f_map}, {"int", f_int}, {"float", f_float}, {"abs", f_abs}, {"round", f_round},
      {"unique", f_unique}, {"sort", f_sort}, {"reverse", f_reverse}, {"indent", f_indent}, {"safe", f_safe},
      {"e", f_escape}, {"escape", f_escape}, {"forceescape", f_escape}, {"min", f_min}, {"max", f_max},
      {"sum", f_sum}, {"center", f_center}, {"wordcount", f_wordcount}, {"attr", f_attr},
  };
  return kFilters;
}

// ---- tests --------------------------------------------------------------------------------------------------

Result<bool> run_test(const std::string& n, const Value& v, const std::optional<Value>& arg) {
  using K = Value::Kind;
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "string") return v.is_string();
  if (n == "number") return v.is_number();
  if (n == "integer") return v.is_int();
  if (n == "float") return v.is_float();
  if (n == "boolean") return v.is_bool();
  if (n == "true") return v.is_bool() && v.as_bool();
  if (n == "false") return v.is_bool() && !v.as_bool();
  if (n == "mapping") return v.is_dict();
  if (n == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (n == "sequence") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (n == "callable") return v.is_callable() || v.is_undefined();
  if (n == "escaped") return false;
  if (n == "lower" || n == "upper") {
    std::string s = v.to_str();
    bool any = false;
    for (char32_t c : pystr::decode(s)) {
      if (!pystr::is_cased(c)) continue;
      any = true;
      if ((pystr::to_upper(c) == c) != (n == "upper")) return false;
    }
    return any;
  }
  if (n == "odd" || n == "even") {
    if (!v.is_number()) return error("unsupported operand type(s) for %: '{}' and 'int'", v.type_name());
    bool odd = v.is_float() ? std::fmod(std::fabs(v.as_double()), 2.0) == 1.0 : (v.as_int() & 1) != 0;
    return n == "odd" ? odd : !odd && (!v.is_float() || std::fmod(v.as_double(), 2.0) == 0.0);
  }
  if (!arg) return error("test '{}' requires an argument", n);
  if (n == "equalto" || n == "eq" || n == "==") return equals(v, *arg);
  if (n == "ne" || n == "!=") return !equals(v, *arg);
  if (n == "sameas") return v.same_object(*arg) && v.kind() != K::kUndefined;
  if (n == "in") return contains(*arg, v);
  if (n == "divisibleby") {
    if (!v.is_number() || !arg->is_number()) return error("divisibleby requires numbers");
    if (arg->as_double() == 0) return error("integer division or modulo by zero");
    if (v.is_float() || arg->is_float()) return std::fmod(v.as_double(), arg->as_double()) == 0;
    return v.as_int() % arg->as_int() == 0;
  }
  INFERA_ASSIGN_OR_RETURN(int c, compare(v, *arg));
  if (n == "lt" || n == "<" || n == "lessthan") return c < 0;
  if (n == "le" || n == "<=") return c <= 0;
  if (n == "gt" || n == ">" || n == "greaterthan") return c > 0;
  if (n == "ge" || n == ">=") return c >= 0;
  return error("unknown test '{}'", n);
}

const char* const kTests[] = {"defined", "undefined", "none", "string", "number", "integer", "float", "boolean",
                              "true", "false", "mapping", "iterable", "sequence", "callable", "escaped", "lower",
                              "upper", "odd", "even", "equalto", "eq", "==", "ne", "!=", "sameas", "in",
                              "divisibleby", "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "lessthan",
                              "greaterthan"};

}  // namespace

bool is_known_filter(const std::string& name) { return filters().count(name) != 0; }

bool is_known_test(const std::string& name) {
  for (const char* t : kTests)
    if (name == t) return true;
  return false;
}

Result<Value> apply_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) return error("unknown filter '{}'", name);
  return it->second(r, input, args);
}

Result<bool> apply_test(Renderer&, const std::string& name, const Value& v, CallArgs& args) {
  if (!is_known_test(name)) return error("unknown test '{}'", name);
  if (args.pos.size() + args.kw.size() > 1) return error("test '{}' takes at most one argument", name);
  std::optional<Value> arg;
  if (!args.pos.empty()) arg = args.pos[0];
  if (!args.kw.empty()) arg = args.kw[0].second;
  return run_test(name, v, arg);
}

}  // namespace infera::jinja
