// Tree-walking renderer and the built-in filters, tests, methods and globals it uses.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat_template/ast.h"
#include "chat_template/value.h"

namespace infera::jinja {

struct Limits {
  size_t max_output = 64u << 20;       // bytes of output (and of any single string value)
  int max_depth = 600;                 // nested statement / expression / macro evaluation
  int max_value_nesting = 256;         // nesting of lists / dicts
  int64_t max_iterations = 1'000'000;  // loop iterations per render
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* lookup(const std::string& name) const;
};

class Renderer {
 public:
  explicit Renderer(Limits limits) : limits_(limits) {}
  Result<std::string> render(const Body& body, std::shared_ptr<Scope> scope);

  Result<Value> eval(const Expr& e);
  Result<Value> call(const Value& fn, CallArgs& args);
  const Limits& limits() const { return limits_; }
  Result<Value> invoke_macro(const Stmt& s, std::shared_ptr<Scope> closure, CallArgs& args, const Value* caller);
  Value pending_caller_;  // `caller` handed from a {% call %} block to the macro it invokes
  Status check_size(size_t bytes) const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Result<Flow> exec(const Body& body);
  Result<Flow> exec_stmt(const Stmt& s);
  Result<Flow> exec_for(const Stmt& s);
  Status exec_set(const Stmt& s);
  Status exec_call_block(const Stmt& s);
  Status exec_filter_block(const Stmt& s);
  Result<std::string> capture(const Body& body);
  Status emit(const std::string& text);
  Value make_macro(const Stmt& s);

  Result<Value> eval_inner(const Expr& e);
  Result<Value> eval_name(const Expr& e);
  Result<Value> eval_collection(const Expr& e);
  Result<Value> eval_compare(const Expr& e);
  Result<Value> eval_call(const Expr& e);
  Result<Value> eval_slice(const Expr& e);
  Result<CallArgs> eval_args(const Expr& e, size_t skip);
  Result<Value> apply_filter_chain(const Expr& f, Value input);

  Limits limits_;
  std::string* out_ = nullptr;
  std::shared_ptr<Scope> scope_;
  int depth_ = 0;
  int64_t iterations_ = 0;
};

// ---- built-ins (builtins.cc, filters.cc) ------------------------------------------------------------------------

// Jinja getattr / getitem semantics (methods first for `.`, keys first for `[]`).
Result<Value> get_attr(const Value& obj, const std::string& name);
Result<Value> get_item(const Value& obj, const Value& key);
Result<Value> slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);
Result<Value> binary_op(const std::string& op, const Value& a, const Value& b, const Limits& limits);
Result<Value> unary_op(const std::string& op, const Value& a);
Result<bool> contains(const Value& container, const Value& item);
Result<std::vector<Value>> iterate(const Value& v);  // Python iter()
Result<Value> apply_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args);
Result<bool> apply_test(Renderer& r, const std::string& name, const Value& v, CallArgs& args);
void install_globals(Scope& scope);

// Binds positional/keyword arguments to parameter names, Python style. Absent ones are nullopt.
Result<std::vector<std::optional<Value>>> bind_args(const std::string& fn, CallArgs& args,
                                                    const std::vector<std::string>& names);
Result<int64_t> to_index(const Value& v, const std::string& what);

}  // namespace infera::jinja
