// Runtime values of the chat-template interpreter, modelled on the Python objects Jinja2 works with.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera::jinja {

class Value;
class Renderer;

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;  // container nesting depth (guards against hostile deeply nested values)
};

// Insertion-ordered mapping (Python dict semantics; keys compared like Python: 1 == 1.0 == True).
class Dict {
 public:
  const Value* find(const Value& key) const;
  void set(const Value& key, Value value);
  size_t size() const;  // out of line: Value is incomplete here (clang rejects the inline use)
  int depth() const { return depth_; }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;
  int depth_ = 1;
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

using NativeFn = std::function<Result<Value>(Renderer&, CallArgs&)>;
struct Callable {
  std::string name;
  NativeFn fn;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value real(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value ns();
  static Value callable(std::string name, NativeFn fn);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && list_->is_tuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  double as_double() const;
  const std::string& str() const { return s_; }  // string contents, or undefined hint
  const std::vector<Value>& items() const { return list_->items; }
  std::vector<Value>& mutable_items() { return list_->items; }
  const Dict& dict_ref() const { return *dict_; }
  Dict& mutable_dict() { return *dict_; }
  const Callable& fn() const { return *fn_; }
  bool same_object(const Value& o) const;

  int nesting() const;  // 0 for scalars, 1 + deepest child for containers
  bool truthy() const;
  std::string type_name() const;  // Python type name, for error messages
  std::string to_str() const;     // Python str()
  std::string repr(int depth = 0) const;  // Python repr()

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;  // dict and namespace
  std::shared_ptr<Callable> fn_;
};

// Python ==.
bool equals(const Value& a, const Value& b);
// Python <, > etc. Returns an error for unorderable types. cmp < 0, 0, > 0.
Result<int> compare(const Value& a, const Value& b);

struct JsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};
// Python json.dumps.
Result<std::string> to_json(const Value& v, const JsonOptions& opts);

// Python float repr.
std::string float_repr(double d);

}  // namespace infera::jinja
