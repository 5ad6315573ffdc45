// Expression evaluation.
#include "chat_template/render.h"

namespace infera::jinja {
namespace {

struct DepthGuard {
  explicit DepthGuard(int& d) : d_(d) { ++d_; }
  ~DepthGuard() { --d_; }
  int& d_;
};

}  // namespace

Result<Value> Renderer::eval(const Expr& e) {
  DepthGuard guard(depth_);
  if (depth_ > limits_.max_depth) return error("maximum recursion depth exceeded");
  auto v = eval_inner(e);
  if (!v) {
    const std::string& m = v.error();
    if (m.rfind("chat template line ", 0) == 0 || m.rfind("TemplateError: ", 0) == 0) return v;
    return error("chat template line {}: {}", e.line, m);
  }
  return v;
}

Result<Value> Renderer::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kLiteral: return e.literal;
    case ExprKind::kName: return eval_name(e);
    case ExprKind::kList:
    case ExprKind::kTuple:
    case ExprKind::kDict: return eval_collection(e);
    case ExprKind::kAttr: {
      INFERA_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
      return get_attr(obj, e.name);
    }
    case ExprKind::kSubscript: {
      INFERA_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
      INFERA_ASSIGN_OR_RETURN(Value key, eval(*e.args[1]));
      return get_item(obj, key);
    }
    case ExprKind::kSlice: return eval_slice(e);
    case ExprKind::kCall: return eval_call(e);
    case ExprKind::kFilter: {
      INFERA_ASSIGN_OR_RETURN(Value input, eval(*e.args[0]));
      INFERA_ASSIGN_OR_RETURN(CallArgs args, eval_args(e, 1));
      return apply_filter(*this, e.name, input, args);
    }
    case ExprKind::kTest: {
      INFERA_ASSIGN_OR_RETURN(Value input, eval(*e.args[0]));
      INFERA_ASSIGN_OR_RETURN(CallArgs args, eval_args(e, 1));
      INFERA_ASSIGN_OR_RETURN(bool ok, apply_test(*this, e.name, input, args));
      return Value::boolean(ok != e.negated);
    }
    case ExprKind::kUnary: {
      INFERA_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      return unary_op(e.name, a);
    }
    case ExprKind::kBinary: {
      INFERA_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      INFERA_ASSIGN_OR_RETURN(Value b, eval(*e.args[1]));
      return binary_op(e.name, a, b, limits_);
    }
    case ExprKind::kAnd: {
      INFERA_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      if (!a.truthy()) return a;
      return eval(*e.args[1]);
    }
    case ExprKind::kOr: {
      INFERA_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      if (a.truthy()) return a;
      return eval(*e.args[1]);
    }
    case ExprKind::kNot: {
      INFERA_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      return Value::boolean(!a.truthy());
    }
    case ExprKind::kCompare: return eval_compare(e);
    case ExprKind::kCond: {
      INFERA_ASSIGN_OR_RETURN(Value cond, eval(*e.args[0]));
      if (cond.truthy()) return eval(*e.args[1]);
      if (!e.args[2]) return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
      return eval(*e.args[2]);
    }
  }
  return error("internal error: unknown expression");
}

Result<Value> Renderer::eval_name(const Expr& e) {
  const Value* v = scope_->lookup(e.name);
  if (!v) return Value::undefined(fmt::format("'{}' is undefined", e.name));
  return *v;
}

Result<Value> Renderer::eval_collection(const Expr& e) {
  Value result;
  if (e.kind == ExprKind::kDict) {
    result = Value::dict();
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      INFERA_ASSIGN_OR_RETURN(Value k, eval(*e.args[i]));
      INFERA_ASSIGN_OR_RETURN(Value v, eval(*e.args[i + 1]));
      if (k.is_list() && !k.is_tuple()) return error("unhashable type: 'list'");
      if (k.is_dict() || k.is_undefined()) return error("unhashable type: '{}'", k.type_name());
      result.mutable_dict().set(k, std::move(v));
    }
  } else {
    std::vector<Value> items;
    for (const ExprPtr& a : e.args) {
      INFERA_ASSIGN_OR_RETURN(Value v, eval(*a));
      items.push_back(std::move(v));
    }
    result = e.kind == ExprKind::kTuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (result.nesting() > limits_.max_value_nesting) return error("value nesting too deep");
  return result;
}

Result<Value> Renderer::eval_compare(const Expr& e) {
  INFERA_ASSIGN_OR_RETURN(Value left, eval(*e.args[0]));
  for (size_t i = 0; i < e.ops.size(); ++i) {
    INFERA_ASSIGN_OR_RETURN(Value right, eval(*e.args[i + 1]));
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") {
      ok = equals(left, right);
    } else if (op == "!=") {
      ok = !equals(left, right);
    } else if (op == "in" || op == "notin") {
      INFERA_ASSIGN_OR_RETURN(bool in, contains(right, left));
      ok = (op == "in") == in;
    } else {
      INFERA_ASSIGN_OR_RETURN(int c, compare(left, right));
      ok = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Result<CallArgs> Renderer::eval_args(const Expr& e, size_t skip) {
  CallArgs args;
  for (size_t i = skip; i < e.args.size(); ++i) {
    INFERA_ASSIGN_OR_RETURN(Value v, eval(*e.args[i]));
    args.pos.push_back(std::move(v));
  }
  for (const auto& [k, x] : e.kwargs) {
    INFERA_ASSIGN_OR_RETURN(Value v, eval(*x));
    args.kw.emplace_back(k, std::move(v));
  }
  return args;
}

Result<Value> Renderer::eval_call(const Expr& e) {
  INFERA_ASSIGN_OR_RETURN(Value fn, eval(*e.args[0]));
  INFERA_ASSIGN_OR_RETURN(CallArgs args, eval_args(e, 1));
  return call(fn, args);
}

Result<Value> Renderer::eval_slice(const Expr& e) {
  INFERA_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
  Value parts[3] = {Value::none(), Value::none(), Value::none()};
  for (int i = 0; i < 3; ++i) {
    if (e.args[i + 1]) {
      INFERA_ASSIGN_OR_RETURN(parts[i], eval(*e.args[i + 1]));
    }
  }
  return slice_value(obj, parts[0], parts[1], parts[2]);
}

Result<Value> Renderer::apply_filter_chain(const Expr& f, Value input) {
  if (f.kind != ExprKind::kFilter) return input;
  INFERA_ASSIGN_OR_RETURN(Value inner, apply_filter_chain(*f.args[0], std::move(input)));
  INFERA_ASSIGN_OR_RETURN(CallArgs args, eval_args(f, 1));
  return apply_filter(*this, f.name, inner, args);
}

}  // namespace infera::jinja
