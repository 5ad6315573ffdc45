// Attribute/item access, operators, Python str/dict methods and global functions.
#include <cmath>
#include <ctime>

#include "chat_template/pystr.h"
#include "chat_template/render.h"

namespace infera::jinja {
namespace {

Status undefined_error(const Value& v) {
  return Status::error(v.str().empty() ? std::string("value is undefined") : v.str());
}

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", obj.type_name(), name));
}

Result<std::optional<std::string>> opt_str(const std::optional<Value>& v, const char* what) {
  if (!v || v->is_none()) return std::optional<std::string>();
  if (!v->is_string()) return error("{} must be None or str, not {}", what, v->type_name());
  return std::optional<std::string>(v->str());
}

std::vector<Value> strings(const std::vector<std::string>& parts) {
  std::vector<Value> out;
  for (const auto& p : parts) out.push_back(Value::string(p));
  return out;
}

Result<bool> prefix_match(const std::string& s, const Value& arg, bool suffix) {
  std::vector<Value> options = arg.is_tuple() ? arg.items() : std::vector<Value>{arg};
  for (const Value& o : options) {
    if (!o.is_string()) return error("{}with arg must be str or a tuple of str", suffix ? "ends" : "starts");
    const std::string& p = o.str();
    if (p.size() > s.size()) continue;
    if (suffix ? s.compare(s.size() - p.size(), p.size(), p) == 0 : s.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

Result<Value> str_method(const std::string& self, const std::string& name, CallArgs& args) {
  using V = Value;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"chars"}));
    INFERA_ASSIGN_OR_RETURN(auto chars, opt_str(a[0], "chars"));
    return V::string(pystr::strip(self, chars ? &*chars : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"sep", "maxsplit"}));
    INFERA_ASSIGN_OR_RETURN(auto sep, opt_str(a[0], "sep"));
    if (sep && sep->empty()) return error("empty separator");
    int64_t maxsplit = -1;
    if (a[1]) {
      INFERA_ASSIGN_OR_RETURN(maxsplit, to_index(*a[1], "maxsplit"));
    }
    auto parts = name == "split" ? pystr::split(self, sep ? &*sep : nullptr, maxsplit)
                                 : pystr::rsplit(self, sep ? &*sep : nullptr, maxsplit);
    return V::list(strings(parts));
  }
  if (name == "splitlines") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"keepends"}));
    return V::list(strings(pystr::splitlines(self, a[0] && a[0]->truthy())));
  }
  if (name == "startswith" || name == "endswith") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"prefix"}));
    if (!a[0]) return error("{}() takes at least 1 argument", name);
    INFERA_ASSIGN_OR_RETURN(bool ok, prefix_match(self, *a[0], name == "endswith"));
    return V::boolean(ok);
  }
  if (name == "upper") return V::string(pystr::upper(self));
  if (name == "lower") return V::string(pystr::lower(self));
  if (name == "title") return V::string(pystr::title(self));
  if (name == "capitalize") return V::string(pystr::capitalize(self));
  if (name == "replace") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"old", "new", "count"}));
    if (!a[0] || !a[1] || !a[0]->is_string() || !a[1]->is_string()) return error("replace() arguments must be str");
    int64_t count = -1;
    if (a[2]) {
      INFERA_ASSIGN_OR_RETURN(count, to_index(*a[2], "count"));
    }
    return V::string(pystr::replace(self, a[0]->str(), a[1]->str(), count));
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index" || name == "rindex") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"sub"}));
    if (!a[0] || !a[0]->is_string()) return error("{}() argument must be str", name);
    if (name == "count") return V::integer(pystr::count(self, a[0]->str()));
    int64_t pos = pystr::find(self, a[0]->str(), name[0] == 'r');
    if (pos < 0 && name.find("index") != std::string::npos) return error("substring not found");
    return V::integer(pos);
  }
  if (name == "join") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"iterable"}));
    if (!a[0]) return error("join() takes exactly one argument");
    INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(*a[0]));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) return error("sequence item {}: expected str instance, {} found", i, items[i].type_name());
      if (i) out += self;
      out += items[i].str();
    }
    return V::string(std::move(out));
  }
  if (name == "isdigit") return V::boolean(pystr::all_of(self, [](char32_t c) { return c >= '0' && c <= '9'; }));
  if (name == "isspace") return V::boolean(pystr::all_of(self, pystr::is_space));
  if (name == "isalpha") return V::boolean(pystr::all_of(self, [](char32_t c) { return pystr::is_cased(c) || c > 0x2E80; }));
  if (name == "isalnum") {
    return V::boolean(pystr::all_of(self, [](char32_t c) { return (c >= '0' && c <= '9') || pystr::is_cased(c) || c > 0x2E80; }));
  }
  if (name == "isupper" || name == "islower") {
    bool want_upper = name == "isupper", any = false;
    for (char32_t c : pystr::decode(self)) {
      if (!pystr::is_cased(c)) continue;
      any = true;
      if ((pystr::to_upper(c) == c) != want_upper) return V::boolean(false);
    }
    return V::boolean(any);
  }
  return error("str method '{}' is not supported", name);
}

bool is_str_method(const std::string& n) {
  static const char* kNames[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith",
                                 "endswith", "upper", "lower", "title", "capitalize", "replace", "find", "rfind",
                                 "count", "index", "rindex", "join", "isdigit", "isspace", "isalpha", "isalnum",
                                 "isupper", "islower"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}

Result<Value> dict_method(const Value& self, const std::string& name, CallArgs& args) {
  if (name == "get") {
    INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {"key", "default"}));
    if (!a[0]) return error("get expected at least 1 argument, got 0");
    const Value* v = self.dict_ref().find(*a[0]);
    return v ? *v : (a[1] ? *a[1] : Value::none());
  }
  INFERA_ASSIGN_OR_RETURN(auto a, bind_args(name, args, {}));
  std::vector<Value> out;
  for (const auto& [k, v] : self.dict_ref().entries()) {
    if (name == "items") out.push_back(Value::tuple({k, v}));
    if (name == "keys") out.push_back(k);
    if (name == "values") out.push_back(v);
  }
  return Value::list(std::move(out));
}

Value bound(const Value& self, const std::string& name, bool is_dict) {
  return Value::callable(name, [self, name, is_dict](Renderer&, CallArgs& args) -> Result<Value> {
    if (is_dict) return dict_method(self, name, args);
    return str_method(self.str(), name, args);
  });
}

Result<int64_t> checked(bool overflow, int64_t, int64_t) {
  if (overflow) return error("integer overflow");
  return 0;
}

Result<Value> int_pow(int64_t base, int64_t exp) {
  if (exp < 0) return Value::real(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) {
      if (__builtin_mul_overflow(result, base, &result)) return error("integer overflow");
    }
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) return error("integer overflow");
  }
  return Value::integer(result);
}

Result<Value> arith(const std::string& op, const Value& a, const Value& b) {
  bool floats = a.is_float() || b.is_float();
  if (op == "/") {
    if (b.as_double() == 0) return error("division by zero");
    return Value::real(a.as_double() / b.as_double());
  }
  if (floats) {
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value::real(x + y);
    if (op == "-") return Value::real(x - y);
    if (op == "*") return Value::real(x * y);
    if (op == "**") return Value::real(std::pow(x, y));
    if (y == 0) return error("float division by zero");
    if (op == "//") return Value::real(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::real(m);
  }
  int64_t x = a.as_int(), y = b.as_int(), r = 0;
  if (op == "+") {
    INFERA_RETURN_IF_ERROR(checked(__builtin_add_overflow(x, y, &r), x, y).status());
    return Value::integer(r);
  }
  if (op == "-") {
    INFERA_RETURN_IF_ERROR(checked(__builtin_sub_overflow(x, y, &r), x, y).status());
    return Value::integer(r);
  }
  if (op == "*") {
    INFERA_RETURN_IF_ERROR(checked(__builtin_mul_overflow(x, y, &r), x, y).status());
    return Value::integer(r);
  }
  if (op == "**") return int_pow(x, y);
  if (y == 0) return error("integer division or modulo by zero");
  if (x == INT64_MIN && y == -1) return error("integer overflow");
  int64_t q = x / y, m = x % y;
  if (m != 0 && ((m < 0) != (y < 0))) {
    q -= 1;
    m += y;
  }
  return Value::integer(op == "//" ? q : m);
}

Result<Value> repeat(const Value& seq, int64_t n, const Limits& limits) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    if (!seq.str().empty() && static_cast<uint64_t>(n) > limits.max_output / seq.str().size())
      return error("output exceeds the limit of {} bytes", limits.max_output);
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  if (!seq.items().empty() && static_cast<uint64_t>(n) > (limits.max_output / 16) / seq.items().size())
    return error("list repetition too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace

Result<int64_t> to_index(const Value& v, const std::string& what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  return error("{} must be an integer, not {}", what, v.type_name());
}

Result<std::vector<std::optional<Value>>> bind_args(const std::string& fn, CallArgs& args,
                                                    const std::vector<std::string>& names) {
  if (args.pos.size() > names.size())
    return error("{}() takes at most {} argument(s) ({} given)", fn, names.size(), args.pos.size());
  std::vector<std::optional<Value>> out(names.size());
  for (size_t i = 0; i < args.pos.size(); ++i) out[i] = args.pos[i];
  for (auto& [k, v] : args.kw) {
    size_t i = 0;
    while (i < names.size() && names[i] != k) ++i;
    if (i == names.size()) return error("{}() got an unexpected keyword argument '{}'", fn, k);
    if (out[i]) return error("{}() got multiple values for argument '{}'", fn, k);
    out[i] = v;
  }
  return out;
}

Result<Value> get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: return undefined_error(obj);
    case Value::Kind::kDict: {
      if (name == "items" || name == "keys" || name == "values" || name == "get") return bound(obj, name, true);
      const Value* v = obj.dict_ref().find(Value::string(name));
      return v ? *v : missing_attr(obj, name);
    }
    case Value::Kind::kNamespace: {
      const Value* v = obj.dict_ref().find(Value::string(name));
      return v ? *v : missing_attr(obj, name);
    }
    case Value::Kind::kString:
      if (is_str_method(name)) return bound(obj, name, false);
      return missing_attr(obj, name);
    default: return missing_attr(obj, name);
  }
}

Result<Value> get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_dict()) {
    if (key.is_list() && !key.is_tuple()) return error("unhashable type: 'list'");
    const Value* v = obj.dict_ref().find(key);
    if (v) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[i];
    } else {
      std::u32string u = pystr::decode(obj.str());
      int64_t n = static_cast<int64_t>(u.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value::string(pystr::encode(u.substr(i, 1)));
    }
    return Value::undefined(fmt::format("{} object has no element {}", obj.type_name(), key.as_int()));
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return Value::undefined(fmt::format("{} object has no element {}", obj.type_name(), key.repr()));
}

Result<Value> slice_value(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) return undefined_error(obj);
  int64_t step = 1;
  if (!step_v.is_none()) {
    INFERA_ASSIGN_OR_RETURN(step, to_index(step_v, "slice step"));
  }
  if (step == 0) return error("slice step cannot be zero");
  std::u32string chars;
  int64_t n;
  if (obj.is_string()) {
    chars = pystr::decode(obj.str());
    n = static_cast<int64_t>(chars.size());
  } else if (obj.is_list()) {
    n = static_cast<int64_t>(obj.items().size());
  } else {
    return error("'{}' object is not subscriptable", obj.type_name());
  }
  auto norm = [&](const Value& v, int64_t dflt) -> Result<int64_t> {
    if (v.is_none()) return dflt;
    INFERA_ASSIGN_OR_RETURN(int64_t i, to_index(v, "slice indices"));
    if (i < 0) i = std::max<int64_t>(i + n, step < 0 ? -1 : 0);
    return std::min<int64_t>(i, step < 0 ? n - 1 : n);
  };
  INFERA_ASSIGN_OR_RETURN(int64_t start, norm(start_v, step < 0 ? n - 1 : 0));
  INFERA_ASSIGN_OR_RETURN(int64_t stop, norm(stop_v, step < 0 ? -1 : n));
  std::vector<int64_t> idx;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : idx) out.push_back(chars[i]);
    return Value::string(pystr::encode(out));
  }
  std::vector<Value> out;
  for (int64_t i : idx) out.push_back(obj.items()[i]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Result<Value> binary_op(const std::string& op, const Value& a, const Value& b, const Limits& limits) {
  if (op == "~") {
    std::string s = a.to_str() + b.to_str();
    if (s.size() > limits.max_output) return error("output exceeds the limit of {} bytes", limits.max_output);
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (a.is_number() && b.is_number()) return arith(op, a, b);
  if (op == "+" && a.is_string() && b.is_string()) {
    if (a.str().size() + b.str().size() > limits.max_output)
      return error("output exceeds the limit of {} bytes", limits.max_output);
    return Value::string(a.str() + b.str());
  }
  if (op == "+" && a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    std::vector<Value> items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int(), limits);
  if (op == "*" && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int(), limits);
  if (op == "%" && a.is_string()) return error("printf-style string formatting ('%') is not supported");
  if (op == "+" && a.is_string()) return error("can only concatenate str (not \"{}\") to str", b.type_name());
  return error("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

Result<Value> unary_op(const std::string& op, const Value& a) {
  if (a.is_undefined()) return undefined_error(a);
  if (!a.is_number()) return error("bad operand type for unary {}: '{}'", op, a.type_name());
  if (op == "+") return a.is_float() ? a : Value::integer(a.as_int());
  if (a.is_float()) return Value::real(-a.as_double());
  if (a.as_int() == INT64_MIN) return error("integer overflow");
  return Value::integer(-a.as_int());
}

Result<bool> contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) return error("'in <string>' requires string as left operand, not {}", item.type_name());
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_dict()) {
    if (item.is_list() && !item.is_tuple()) return error("unhashable type: 'list'");
    return container.dict_ref().find(item) != nullptr;
  }
  if (container.is_list()) {
    for (const Value& v : container.items())
      if (equals(v, item)) return true;
    return false;
  }
  if (container.is_undefined()) return false;
  return error("argument of type '{}' is not iterable", container.type_name());
}

Result<std::vector<Value>> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return std::vector<Value>{};
    case Value::Kind::kList: return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, val] : v.dict_ref().entries()) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (char32_t c : pystr::decode(v.str())) chars.push_back(Value::string(pystr::encode(std::u32string(1, c))));
      return chars;
    }
    default: return error("'{}' object is not iterable", v.type_name());
  }
}

static Result<Value> global_range(Renderer&, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(auto a, bind_args("range", args, {"a", "b", "c"}));
  int64_t start = 0, stop = 0, step = 1;
  if (!a[0]) return error("range expected at least 1 argument, got 0");
  INFERA_ASSIGN_OR_RETURN(int64_t first, to_index(*a[0], "range() argument"));
  if (a[1]) {
    start = first;
    INFERA_ASSIGN_OR_RETURN(stop, to_index(*a[1], "range() argument"));
  } else {
    stop = first;
  }
  if (a[2]) {
    INFERA_ASSIGN_OR_RETURN(step, to_index(*a[2], "range() argument"));
  }
  if (step == 0) return error("range() arg 3 must not be zero");
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (out.size() >= 100000) return error("range too big, the sandbox blocks ranges larger than 100000");
    out.push_back(Value::integer(i));
  }
  return Value::list(std::move(out));
}

static Result<Value> global_mapping(bool ns, CallArgs& args) {
  Value out = ns ? Value::ns() : Value::dict();
  if (args.pos.size() > 1) return error("expected at most 1 positional argument, got {}", args.pos.size());
  if (!args.pos.empty()) {
    if (!args.pos[0].is_dict()) return error("cannot convert '{}' to a mapping", args.pos[0].type_name());
    for (const auto& [k, v] : args.pos[0].dict_ref().entries()) out.mutable_dict().set(k, v);
  }
  for (auto& [k, v] : args.kw) out.mutable_dict().set(Value::string(k), v);
  return out;
}

static Result<Value> global_strftime(Renderer&, CallArgs& args) {
  INFERA_ASSIGN_OR_RETURN(auto a, bind_args("strftime_now", args, {"format"}));
  if (!a[0] || !a[0]->is_string()) return error("strftime_now() requires a format string");
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[512];
  size_t n = std::strftime(buf, sizeof(buf), a[0]->str().c_str(), &tm);
  return Value::string(std::string(buf, n));
}

void install_globals(Scope& scope) {
  scope.vars["range"] = Value::callable("range", global_range);
  scope.vars["namespace"] = Value::callable("namespace", [](Renderer&, CallArgs& a) { return global_mapping(true, a); });
  scope.vars["dict"] = Value::callable("dict", [](Renderer&, CallArgs& a) { return global_mapping(false, a); });
  scope.vars["strftime_now"] = Value::callable("strftime_now", global_strftime);
  scope.vars["raise_exception"] = Value::callable("raise_exception", [](Renderer&, CallArgs& args) -> Result<Value> {
    std::string msg = args.pos.empty() ? std::string() : args.pos[0].to_str();
    return Status::error("TemplateError: " + msg);
  });
}

}  // namespace infera::jinja
