#include "chat_template/render.h"

namespace infera::jinja {
namespace {

struct DepthGuard {
  explicit DepthGuard(int& d) : d_(d) { ++d_; }
  ~DepthGuard() { --d_; }
  int& d_;
};

std::string with_line(const std::string& msg, int line) {
  if (msg.rfind("chat template line ", 0) == 0 || msg.rfind("TemplateError: ", 0) == 0) return msg;
  return fmt::format("chat template line {}: {}", line, msg);
}

Status at_line(const Status& s, int line) { return Status::error(with_line(s.message(), line)); }

}  // namespace

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

Status Renderer::check_size(size_t bytes) const {
  if (bytes > limits_.max_output) return error("output exceeds the limit of {} bytes", limits_.max_output);
  return Status::ok();
}

Result<std::string> Renderer::render(const Body& body, std::shared_ptr<Scope> scope) {
  std::string out;
  out_ = &out;
  scope_ = std::move(scope);
  INFERA_ASSIGN_OR_RETURN(Flow flow, exec(body));
  (void)flow;
  return out;
}

Status Renderer::emit(const std::string& text) {
  INFERA_RETURN_IF_ERROR(check_size(out_->size() + text.size()));
  out_->append(text);
  return Status::ok();
}

Result<std::string> Renderer::capture(const Body& body) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  auto flow = exec(body);
  out_ = saved;
  if (!flow) return flow.status();
  return buf;
}

Result<Renderer::Flow> Renderer::exec(const Body& body) {
  DepthGuard guard(depth_);
  if (depth_ > limits_.max_depth) return error("maximum recursion depth exceeded");
  for (const StmtPtr& s : body) {
    auto flow = exec_stmt(*s);
    if (!flow) return at_line(flow.status(), s->line);
    if (*flow != Flow::kNormal) return *flow;
  }
  return Flow::kNormal;
}

Result<Renderer::Flow> Renderer::exec_stmt(const Stmt& s) {
  switch (s.kind) {
    case StmtKind::kText: INFERA_RETURN_IF_ERROR(emit(s.text)); break;
    case StmtKind::kOutput: {
      INFERA_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
      INFERA_RETURN_IF_ERROR(emit(v.to_str()));
      break;
    }
    case StmtKind::kIf: {
      INFERA_ASSIGN_OR_RETURN(Value cond, eval(*s.expr));
      return exec(cond.truthy() ? s.body : s.else_body);
    }
    case StmtKind::kFor: return exec_for(s);
    case StmtKind::kSet:
    case StmtKind::kSetBlock: INFERA_RETURN_IF_ERROR(exec_set(s)); break;
    case StmtKind::kMacro: scope_->vars[s.text] = make_macro(s); break;
    case StmtKind::kCallBlock: INFERA_RETURN_IF_ERROR(exec_call_block(s)); break;
    case StmtKind::kFilterBlock: INFERA_RETURN_IF_ERROR(exec_filter_block(s)); break;
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

static Status assign_targets(Scope& scope, const std::vector<std::string>& targets, const Value& v) {
  if (targets.size() == 1) {
    scope.vars[targets[0]] = v;
    return Status::ok();
  }
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> parts, iterate(v));
  if (parts.size() != targets.size()) {
    return error("cannot unpack {} values into {} targets", parts.size(), targets.size());
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = parts[i];
  return Status::ok();
}

// One LoopContext-like namespace per loop, updated in place each iteration (as Jinja's LoopContext is).
static Value make_loop(std::shared_ptr<size_t> index) {
  Value loop = Value::ns();
  loop.mutable_dict().set(Value::string("depth"), Value::integer(1));
  loop.mutable_dict().set(Value::string("depth0"), Value::integer(0));
  loop.mutable_dict().set(Value::string("cycle"), Value::callable("cycle", [index](Renderer&, CallArgs& a) -> Result<Value> {
    if (a.pos.empty()) return error("no items for cycling given");
    return a.pos[*index % a.pos.size()];
  }));
  return loop;
}

static void update_loop(Value& loop, size_t i, const std::vector<Value>& items) {
  static const Value kIndex = Value::string("index"), kIndex0 = Value::string("index0"),
                     kRev = Value::string("revindex"), kRev0 = Value::string("revindex0"),
                     kFirst = Value::string("first"), kLast = Value::string("last"),
                     kLength = Value::string("length"), kPrev = Value::string("previtem"),
                     kNext = Value::string("nextitem");
  size_t n = items.size();
  Dict& d = loop.mutable_dict();
  d.set(kIndex, Value::integer(static_cast<int64_t>(i + 1)));
  d.set(kIndex0, Value::integer(static_cast<int64_t>(i)));
  d.set(kRev, Value::integer(static_cast<int64_t>(n - i)));
  d.set(kRev0, Value::integer(static_cast<int64_t>(n - i - 1)));
  d.set(kFirst, Value::boolean(i == 0));
  d.set(kLast, Value::boolean(i + 1 == n));
  d.set(kLength, Value::integer(static_cast<int64_t>(n)));
  d.set(kPrev, i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
  d.set(kNext, i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
}

Result<Renderer::Flow> Renderer::exec_for(const Stmt& s) {
  INFERA_ASSIGN_OR_RETURN(Value iterable, eval(*s.expr));
  INFERA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(iterable));
  auto saved = scope_;
  scope_ = std::make_shared<Scope>();
  scope_->parent = saved;
  auto restore = [&] { scope_ = saved; };
  if (s.filter) {
    std::vector<Value> kept;
    for (const Value& item : items) {
      Status st = assign_targets(*scope_, s.targets, item);
      if (!st) return restore(), st;
      auto cond = eval(*s.filter);
      if (!cond) return restore(), cond.status();
      if (cond->truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  auto index = std::make_shared<size_t>(0);
  Value loop = make_loop(index);
  scope_->vars["loop"] = loop;
  for (size_t i = 0; i < items.size(); ++i) {
    if (++iterations_ > limits_.max_iterations) return restore(), error("loop iteration limit exceeded");
    *index = i;
    update_loop(loop, i, items);
    Status st = assign_targets(*scope_, s.targets, items[i]);
    if (!st) return restore(), st;
    auto flow = exec(s.body);
    if (!flow) return restore(), flow.status();
    if (*flow == Flow::kBreak) break;
  }
  restore();
  if (items.empty() && !s.else_body.empty()) return exec(s.else_body);
  return Flow::kNormal;
}

Status Renderer::exec_set(const Stmt& s) {
  Value v;
  if (s.kind == StmtKind::kSetBlock) {
    INFERA_ASSIGN_OR_RETURN(std::string text, capture(s.body));
    v = Value::string(std::move(text));
  } else {
    INFERA_ASSIGN_OR_RETURN(v, eval(*s.expr));
  }
  if (v.nesting() > limits_.max_value_nesting) return error("value nesting too deep");
  if (s.attr.empty()) return assign_targets(*scope_, s.targets, v);
  const Value* target = scope_->lookup(s.targets[0]);
  if (!target || !target->is_namespace()) {
    return error("cannot assign attribute '{}' on non-namespace object '{}'", s.attr, s.targets[0]);
  }
  Value ns = *target;
  ns.mutable_dict().set(Value::string(s.attr), std::move(v));
  if (ns.nesting() > limits_.max_value_nesting) return error("value nesting too deep");
  return Status::ok();
}

Value Renderer::make_macro(const Stmt& s) {
  // The defining scope holds the macro, so the macro holds its scope weakly (no reference cycle).
  std::weak_ptr<Scope> closure = scope_;
  const Stmt* def = &s;
  return Value::callable(s.text, [def, closure](Renderer& r, CallArgs& args) -> Result<Value> {
    Value caller = r.pending_caller_;
    r.pending_caller_ = Value();
    auto scope = closure.lock();
    if (!scope) return error("macro '{}' called after its defining scope ended", def->text);
    return r.invoke_macro(*def, scope, args, caller.is_callable() ? &caller : nullptr);
  });
}

Result<Value> Renderer::invoke_macro(const Stmt& s, std::shared_ptr<Scope> closure, CallArgs& args,
                                     const Value* caller) {
  auto frame = std::make_shared<Scope>();
  frame->parent = std::move(closure);
  if (args.pos.size() > s.params.size()) return error("macro '{}' takes not more than {} argument(s)", s.text, s.params.size());
  for (size_t i = 0; i < s.params.size(); ++i) {
    const MacroParam& p = s.params[i];
    std::optional<Value> v;
    if (i < args.pos.size()) v = args.pos[i];
    for (auto& [k, kv] : args.kw)
      if (k == p.name) v = kv;
    if (!v && p.default_value) {
      INFERA_ASSIGN_OR_RETURN(v, eval(*p.default_value));
    }
    frame->vars[p.name] = v ? *v : Value::undefined(fmt::format("parameter '{}' was not provided", p.name));
  }
  for (auto& [k, kv] : args.kw) {
    bool known = false;
    for (const MacroParam& p : s.params) known |= p.name == k;
    if (!known) return error("macro '{}' takes no keyword argument '{}'", s.text, k);
  }
  if (caller) frame->vars["caller"] = *caller;
  auto saved = scope_;
  scope_ = frame;
  auto text = capture(s.body);
  scope_ = saved;
  if (!text) return text.status();
  return Value::string(std::move(*text));
}

Status Renderer::exec_call_block(const Stmt& s) {
  const Stmt* def = &s;
  std::shared_ptr<Scope> closure = scope_;
  Value caller = Value::callable("caller", [def, closure](Renderer& r, CallArgs& args) -> Result<Value> {
    return r.invoke_macro(*def, closure, args, nullptr);
  });
  const Expr& call = *s.expr;
  INFERA_ASSIGN_OR_RETURN(Value fn, eval(*call.args[0]));
  INFERA_ASSIGN_OR_RETURN(CallArgs args, eval_args(call, 1));
  pending_caller_ = caller;
  auto result = this->call(fn, args);
  pending_caller_ = Value();
  if (!result) return result.status();
  return emit(result->to_str());
}

Status Renderer::exec_filter_block(const Stmt& s) {
  INFERA_ASSIGN_OR_RETURN(std::string text, capture(s.body));
  INFERA_ASSIGN_OR_RETURN(Value v, apply_filter_chain(*s.filter, Value::string(std::move(text))));
  return emit(v.to_str());
}

Result<Value> Renderer::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) return error("{}", fn.str().empty() ? "undefined value is not callable" : fn.str());
  if (!fn.is_callable()) return error("'{}' object is not callable", fn.type_name());
  DepthGuard guard(depth_);
  if (depth_ > limits_.max_depth) return error("maximum recursion depth exceeded");
  return fn.fn().fn(*this, args);
}

}  // namespace infera::jinja
