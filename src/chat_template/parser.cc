// Recursive-descent parser producing the syntax tree; mirrors the grammar and operator precedence of
// Jinja2's parser.py.
#include <set>

#include "chat_template/ast.h"

namespace infera::jinja {
namespace {

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}
  Result<Body> run();

 private:
  const Token& cur() const { return toks_[p_]; }
  const Token& look() const { return toks_[std::min(p_ + 1, toks_.size() - 1)]; }
  bool at_op(const char* op) const { return cur().type == Tok::kOp && cur().text == op; }
  bool at_name(const char* n) const { return cur().type == Tok::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (!at_op(op)) return false;
    ++p_;
    return true;
  }
  bool skip_name(const char* n) {
    if (!at_name(n)) return false;
    ++p_;
    return true;
  }
  Status fail(const std::string& msg) const { return error("chat template line {}: {}", cur().line, msg); }
  std::string describe() const;
  Status expect_op(const char* op);
  Status expect_block_end();
  Result<std::string> expect_name();

  Result<Body> subparse(const std::set<std::string>& ends, std::string* found);
  Result<StmtPtr> statement();
  Result<StmtPtr> parse_if(int line);
  Result<StmtPtr> parse_for(int line);
  Result<StmtPtr> parse_set(int line);
  Result<StmtPtr> parse_macro(int line);
  Result<StmtPtr> parse_call_block(int line);
  Result<StmtPtr> parse_filter_block(int line);

  Result<ExprPtr> tuple(bool with_condexpr = true, bool explicit_parens = false);
  Result<ExprPtr> expression(bool with_condexpr = true);
  Result<ExprPtr> condexpr();
  Result<ExprPtr> or_expr();
  Result<ExprPtr> and_expr();
  Result<ExprPtr> not_expr();
  Result<ExprPtr> compare();
  Result<ExprPtr> math1();
  Result<ExprPtr> concat();
  Result<ExprPtr> math2();
  Result<ExprPtr> pow();
  Result<ExprPtr> unary(bool with_filter);
  Result<ExprPtr> primary();
  Result<ExprPtr> postfix(ExprPtr node);
  Result<ExprPtr> filter_expr(ExprPtr node);
  Result<ExprPtr> filter(ExprPtr node);
  Result<ExprPtr> test(ExprPtr node);
  Result<ExprPtr> subscript(ExprPtr node);
  Status call_args(Expr& call);
  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(ExprKind::kBinary, line);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }
  StmtPtr make_stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  std::vector<Token> toks_;
  size_t p_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

struct DepthGuard {
  explicit DepthGuard(int& d) : d_(d) { ++d_; }
  ~DepthGuard() { --d_; }
  int& d_;
};

std::string Parser::describe() const {
  switch (cur().type) {
    case Tok::kText: return "template text";
    case Tok::kBlockBegin: return "'{%'";
    case Tok::kBlockEnd: return "end of statement block";
    case Tok::kVarBegin: return "'{{'";
    case Tok::kVarEnd: return "end of print statement";
    case Tok::kEnd: return "end of template";
    case Tok::kString: return "string";
    default: return "'" + cur().text + "'";
  }
}

Status Parser::expect_op(const char* op) {
  if (skip_op(op)) return Status::ok();
  return fail(fmt::format("expected '{}', got {}", op, describe()));
}

Status Parser::expect_block_end() {
  if (cur().type == Tok::kBlockEnd) {
    ++p_;
    return Status::ok();
  }
  return fail(fmt::format("expected end of statement block, got {}", describe()));
}

Result<std::string> Parser::expect_name() {
  if (cur().type != Tok::kName) return fail(fmt::format("expected a name, got {}", describe()));
  return toks_[p_++].text;
}

Result<Body> Parser::run() {
  std::string found;
  INFERA_ASSIGN_OR_RETURN(Body body, subparse({}, &found));
  return body;
}

Result<Body> Parser::subparse(const std::set<std::string>& ends, std::string* found) {
  DepthGuard guard(depth_);
  if (depth_ > kMaxNesting) return fail("template nesting too deep");
  Body body;
  while (true) {
    const Token& t = cur();
    if (t.type == Tok::kEnd) {
      if (ends.empty()) return body;
      return fail(fmt::format("unexpected end of template, expected '{}'", *ends.rbegin()));
    }
    if (t.type == Tok::kText) {
      auto s = make_stmt(StmtKind::kText, t.line);
      s->text = t.text;
      body.push_back(std::move(s));
      ++p_;
    } else if (t.type == Tok::kVarBegin) {
      ++p_;
      auto s = make_stmt(StmtKind::kOutput, t.line);
      INFERA_ASSIGN_OR_RETURN(s->expr, tuple());
      if (cur().type != Tok::kVarEnd) return fail(fmt::format("expected end of print statement, got {}", describe()));
      ++p_;
      body.push_back(std::move(s));
    } else if (t.type == Tok::kBlockBegin) {
      ++p_;
      if (cur().type == Tok::kName && ends.count(cur().text)) {
        *found = toks_[p_++].text;
        return body;
      }
      INFERA_ASSIGN_OR_RETURN(StmtPtr s, statement());
      if (s) body.push_back(std::move(s));
    } else {
      return fail(fmt::format("unexpected {}", describe()));
    }
  }
}

Result<StmtPtr> Parser::statement() {
  int line = cur().line;
  if (cur().type != Tok::kName) return fail(fmt::format("expected a statement name, got {}", describe()));
  std::string name = toks_[p_++].text;
  if (name == "if") return parse_if(line);
  if (name == "for") return parse_for(line);
  if (name == "set") return parse_set(line);
  if (name == "macro") return parse_macro(line);
  if (name == "call") return parse_call_block(line);
  if (name == "filter") return parse_filter_block(line);
  if (name == "break" || name == "continue") {
    if (loop_depth_ == 0) return error("chat template line {}: '{}' outside of a loop", line, name);
    INFERA_RETURN_IF_ERROR(expect_block_end());
    return make_stmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, line);
  }
  if (name == "generation") {  // transformers' AssistantTracker tag: renders its body unchanged
    INFERA_RETURN_IF_ERROR(expect_block_end());
    std::string found;
    auto s = make_stmt(StmtKind::kIf, line);
    auto lit = make(ExprKind::kLiteral, line);
    lit->literal = Value::boolean(true);
    s->expr = std::move(lit);
    INFERA_ASSIGN_OR_RETURN(s->body, subparse({"endgeneration"}, &found));
    INFERA_RETURN_IF_ERROR(expect_block_end());
    return s;
  }
  return error("chat template line {}: unknown or unsupported tag '{}'", line, name);
}

Result<StmtPtr> Parser::parse_if(int line) {
  auto s = make_stmt(StmtKind::kIf, line);
  INFERA_ASSIGN_OR_RETURN(s->expr, tuple());
  INFERA_RETURN_IF_ERROR(expect_block_end());
  std::string found;
  INFERA_ASSIGN_OR_RETURN(s->body, subparse({"elif", "else", "endif"}, &found));
  if (found == "elif") {
    INFERA_ASSIGN_OR_RETURN(StmtPtr nested, parse_if(cur().line));
    s->else_body.push_back(std::move(nested));
    return s;
  }
  if (found == "else") {
    INFERA_RETURN_IF_ERROR(expect_block_end());
    INFERA_ASSIGN_OR_RETURN(s->else_body, subparse({"endif"}, &found));
  }
  INFERA_RETURN_IF_ERROR(expect_block_end());
  return s;
}

Result<StmtPtr> Parser::parse_for(int line) {
  auto s = make_stmt(StmtKind::kFor, line);
  do {
    if (at_name("in")) break;
    INFERA_ASSIGN_OR_RETURN(std::string target, expect_name());
    s->targets.push_back(std::move(target));
  } while (skip_op(","));
  if (!skip_name("in")) return fail(fmt::format("expected 'in', got {}", describe()));
  INFERA_ASSIGN_OR_RETURN(s->expr, tuple(false));
  if (skip_name("if")) {
    INFERA_ASSIGN_OR_RETURN(s->filter, expression());
  }
  if (at_name("recursive")) return fail("recursive loops are not supported");
  INFERA_RETURN_IF_ERROR(expect_block_end());
  std::string found;
  ++loop_depth_;
  auto body = subparse({"endfor", "else"}, &found);
  --loop_depth_;
  if (!body) return body.status();
  s->body = std::move(*body);
  if (found == "else") {
    INFERA_RETURN_IF_ERROR(expect_block_end());
    INFERA_ASSIGN_OR_RETURN(s->else_body, subparse({"endfor"}, &found));
  }
  INFERA_RETURN_IF_ERROR(expect_block_end());
  return s;
}

Result<StmtPtr> Parser::parse_set(int line) {
  auto s = make_stmt(StmtKind::kSet, line);
  INFERA_ASSIGN_OR_RETURN(std::string first, expect_name());
  s->targets.push_back(first);
  if (skip_op(".")) {
    INFERA_ASSIGN_OR_RETURN(s->attr, expect_name());
  } else {
    while (skip_op(",")) {
      INFERA_ASSIGN_OR_RETURN(std::string t, expect_name());
      s->targets.push_back(std::move(t));
    }
  }
  if (skip_op("=")) {
    INFERA_ASSIGN_OR_RETURN(s->expr, tuple());
    INFERA_RETURN_IF_ERROR(expect_block_end());
    return s;
  }
  if (s->targets.size() != 1 || !s->attr.empty()) return fail("expected '='");
  if (at_op("|")) return fail("filtered block set is not supported");
  INFERA_RETURN_IF_ERROR(expect_block_end());
  s->kind = StmtKind::kSetBlock;
  std::string found;
  INFERA_ASSIGN_OR_RETURN(s->body, subparse({"endset"}, &found));
  INFERA_RETURN_IF_ERROR(expect_block_end());
  return s;
}

Result<StmtPtr> Parser::parse_macro(int line) {
  auto s = make_stmt(StmtKind::kMacro, line);
  INFERA_ASSIGN_OR_RETURN(s->text, expect_name());
  INFERA_RETURN_IF_ERROR(expect_op("("));
  while (!skip_op(")")) {
    if (!s->params.empty()) INFERA_RETURN_IF_ERROR(expect_op(","));
    if (skip_op(")")) break;
    MacroParam param;
    INFERA_ASSIGN_OR_RETURN(param.name, expect_name());
    if (skip_op("=")) {
      INFERA_ASSIGN_OR_RETURN(param.default_value, expression());
    }
    s->params.push_back(std::move(param));
  }
  INFERA_RETURN_IF_ERROR(expect_block_end());
  int saved = loop_depth_;
  loop_depth_ = 0;
  std::string found;
  auto body = subparse({"endmacro"}, &found);
  loop_depth_ = saved;
  if (!body) return body.status();
  s->body = std::move(*body);
  skip_name(s->text.c_str());
  INFERA_RETURN_IF_ERROR(expect_block_end());
  return s;
}

Result<StmtPtr> Parser::parse_call_block(int line) {
  auto s = make_stmt(StmtKind::kCallBlock, line);
  if (skip_op("(")) {
    while (!skip_op(")")) {
      if (!s->params.empty()) INFERA_RETURN_IF_ERROR(expect_op(","));
      if (skip_op(")")) break;
      MacroParam param;
      INFERA_ASSIGN_OR_RETURN(param.name, expect_name());
      if (skip_op("=")) {
        INFERA_ASSIGN_OR_RETURN(param.default_value, expression());
      }
      s->params.push_back(std::move(param));
    }
  }
  INFERA_ASSIGN_OR_RETURN(s->expr, expression());
  if (s->expr->kind != ExprKind::kCall) return fail("expected a call after 'call'");
  INFERA_RETURN_IF_ERROR(expect_block_end());
  std::string found;
  INFERA_ASSIGN_OR_RETURN(s->body, subparse({"endcall"}, &found));
  INFERA_RETURN_IF_ERROR(expect_block_end());
  return s;
}

Result<StmtPtr> Parser::parse_filter_block(int line) {
  auto s = make_stmt(StmtKind::kFilterBlock, line);
  ExprPtr node = make(ExprKind::kLiteral, line);  // placeholder for the block's output
  do {
    INFERA_ASSIGN_OR_RETURN(node, filter(std::move(node)));
  } while (skip_op("|"));
  s->filter = std::move(node);
  INFERA_RETURN_IF_ERROR(expect_block_end());
  std::string found;
  INFERA_ASSIGN_OR_RETURN(s->body, subparse({"endfilter"}, &found));
  INFERA_RETURN_IF_ERROR(expect_block_end());
  return s;
}

// ---- expressions ----------------------------------------------------------------------------------------------

Result<ExprPtr> Parser::tuple(bool with_condexpr, bool explicit_parens) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) {
      if (!skip_op(",")) break;
      is_tuple = true;
    }
    bool at_end = cur().type == Tok::kBlockEnd || cur().type == Tok::kVarEnd || at_op(")") ||
                  (!with_condexpr && at_name("if"));
    if (!items.empty() && at_end) break;
    INFERA_ASSIGN_OR_RETURN(ExprPtr e, expression(with_condexpr));
    items.push_back(std::move(e));
    if (!at_op(",")) break;
  }
  if (!is_tuple) return std::move(items[0]);
  auto t = make(ExprKind::kTuple, line);
  t->args = std::move(items);
  return t;
}

Result<ExprPtr> Parser::expression(bool with_condexpr) {
  DepthGuard guard(depth_);
  if (depth_ > kMaxNesting) return fail("expression nesting too deep");
  return with_condexpr ? condexpr() : or_expr();
}

Result<ExprPtr> Parser::condexpr() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr expr1, or_expr());
  while (at_name("if")) {
    int line = toks_[p_++].line;
    auto node = make(ExprKind::kCond, line);
    INFERA_ASSIGN_OR_RETURN(ExprPtr cond, or_expr());
    ExprPtr else_expr;
    if (skip_name("else")) {
      INFERA_ASSIGN_OR_RETURN(else_expr, condexpr());
    }
    node->args.push_back(std::move(cond));
    node->args.push_back(std::move(expr1));
    node->args.push_back(std::move(else_expr));
    expr1 = std::move(node);
  }
  return expr1;
}

Result<ExprPtr> Parser::or_expr() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr left, and_expr());
  while (at_name("or")) {
    int line = toks_[p_++].line;
    INFERA_ASSIGN_OR_RETURN(ExprPtr right, and_expr());
    auto node = make(ExprKind::kOr, line);
    node->args.push_back(std::move(left));
    node->args.push_back(std::move(right));
    left = std::move(node);
  }
  return left;
}

Result<ExprPtr> Parser::and_expr() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr left, not_expr());
  while (at_name("and")) {
    int line = toks_[p_++].line;
    INFERA_ASSIGN_OR_RETURN(ExprPtr right, not_expr());
    auto node = make(ExprKind::kAnd, line);
    node->args.push_back(std::move(left));
    node->args.push_back(std::move(right));
    left = std::move(node);
  }
  return left;
}

Result<ExprPtr> Parser::not_expr() {
  if (at_name("not")) {
    int line = toks_[p_++].line;
    DepthGuard guard(depth_);
    if (depth_ > kMaxNesting) return fail("expression nesting too deep");
    INFERA_ASSIGN_OR_RETURN(ExprPtr inner, not_expr());
    auto node = make(ExprKind::kNot, line);
    node->args.push_back(std::move(inner));
    return node;
  }
  return compare();
}

Result<ExprPtr> Parser::compare() {
  int line = cur().line;
  INFERA_ASSIGN_OR_RETURN(ExprPtr first, math1());
  auto node = make(ExprKind::kCompare, line);
  node->args.push_back(std::move(first));
  while (true) {
    std::string op;
    if (cur().type == Tok::kOp && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                   cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
      op = toks_[p_++].text;
    } else if (skip_name("in")) {
      op = "in";
    } else if (at_name("not") && look().type == Tok::kName && look().text == "in") {
      p_ += 2;
      op = "notin";
    } else {
      break;
    }
    INFERA_ASSIGN_OR_RETURN(ExprPtr operand, math1());
    node->ops.push_back(op);
    node->args.push_back(std::move(operand));
  }
  if (node->ops.empty()) return std::move(node->args[0]);
  return node;
}

Result<ExprPtr> Parser::math1() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr left, concat());
  while (at_op("+") || at_op("-")) {
    const Token& t = toks_[p_++];
    INFERA_ASSIGN_OR_RETURN(ExprPtr right, concat());
    left = binary(t.text, std::move(left), std::move(right), t.line);
  }
  return left;
}

Result<ExprPtr> Parser::concat() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr left, math2());
  while (at_op("~")) {
    const Token& t = toks_[p_++];
    INFERA_ASSIGN_OR_RETURN(ExprPtr right, math2());
    left = binary("~", std::move(left), std::move(right), t.line);
  }
  return left;
}

Result<ExprPtr> Parser::math2() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr left, pow());
  while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
    const Token& t = toks_[p_++];
    INFERA_ASSIGN_OR_RETURN(ExprPtr right, pow());
    left = binary(t.text, std::move(left), std::move(right), t.line);
  }
  return left;
}

Result<ExprPtr> Parser::pow() {
  INFERA_ASSIGN_OR_RETURN(ExprPtr left, unary(true));
  while (at_op("**")) {
    const Token& t = toks_[p_++];
    INFERA_ASSIGN_OR_RETURN(ExprPtr right, unary(true));
    left = binary("**", std::move(left), std::move(right), t.line);
  }
  return left;
}

Result<ExprPtr> Parser::unary(bool with_filter) {
  DepthGuard guard(depth_);
  if (depth_ > kMaxNesting) return fail("expression nesting too deep");
  ExprPtr node;
  if (at_op("-") || at_op("+")) {
    const Token& t = toks_[p_++];
    INFERA_ASSIGN_OR_RETURN(ExprPtr operand, unary(false));
    node = make(ExprKind::kUnary, t.line);
    node->name = t.text;
    node->args.push_back(std::move(operand));
  } else {
    INFERA_ASSIGN_OR_RETURN(node, primary());
  }
  INFERA_ASSIGN_OR_RETURN(node, postfix(std::move(node)));
  if (with_filter) {
    INFERA_ASSIGN_OR_RETURN(node, filter_expr(std::move(node)));
  }
  return node;
}

Result<ExprPtr> Parser::primary() {
  const Token& t = cur();
  int line = t.line;
  if (t.type == Tok::kName) {
    ++p_;
    auto node = make(ExprKind::kLiteral, line);
    if (t.text == "true" || t.text == "True") {
      node->literal = Value::boolean(true);
    } else if (t.text == "false" || t.text == "False") {
      node->literal = Value::boolean(false);
    } else if (t.text == "none" || t.text == "None") {
      node->literal = Value::none();
    } else {
      node->kind = ExprKind::kName;
      node->name = t.text;
    }
    return node;
  }
  if (t.type == Tok::kString) {
    std::string s;
    while (cur().type == Tok::kString) s += toks_[p_++].text;
    auto node = make(ExprKind::kLiteral, line);
    node->literal = Value::string(std::move(s));
    return node;
  }
  if (t.type == Tok::kInt || t.type == Tok::kFloat) {
    ++p_;
    auto node = make(ExprKind::kLiteral, line);
    node->literal = t.type == Tok::kInt ? Value::integer(t.int_value) : Value::real(t.float_value);
    return node;
  }
  if (skip_op("(")) {
    if (skip_op(")")) {
      auto node = make(ExprKind::kTuple, line);
      return node;
    }
    INFERA_ASSIGN_OR_RETURN(ExprPtr inner, tuple(true, true));
    INFERA_RETURN_IF_ERROR(expect_op(")"));
    return inner;
  }
  if (skip_op("[")) {
    auto node = make(ExprKind::kList, line);
    while (!skip_op("]")) {
      if (!node->args.empty()) INFERA_RETURN_IF_ERROR(expect_op(","));
      if (skip_op("]")) break;
      INFERA_ASSIGN_OR_RETURN(ExprPtr item, expression());
      node->args.push_back(std::move(item));
    }
    return node;
  }
  if (skip_op("{")) {
    auto node = make(ExprKind::kDict, line);
    while (!skip_op("}")) {
      if (!node->args.empty()) INFERA_RETURN_IF_ERROR(expect_op(","));
      if (skip_op("}")) break;
      INFERA_ASSIGN_OR_RETURN(ExprPtr key, expression());
      INFERA_RETURN_IF_ERROR(expect_op(":"));
      INFERA_ASSIGN_OR_RETURN(ExprPtr value, expression());
      node->args.push_back(std::move(key));
      node->args.push_back(std::move(value));
    }
    return node;
  }
  return fail(fmt::format("unexpected {}", describe()));
}

Result<ExprPtr> Parser::postfix(ExprPtr node) {
  while (true) {
    if (at_op(".")) {
      int line = toks_[p_++].line;
      if (cur().type == Tok::kInt) {
        auto sub = make(ExprKind::kSubscript, line);
        auto idx = make(ExprKind::kLiteral, line);
        idx->literal = Value::integer(toks_[p_++].int_value);
        sub->args.push_back(std::move(node));
        sub->args.push_back(std::move(idx));
        node = std::move(sub);
        continue;
      }
      auto attr = make(ExprKind::kAttr, line);
      INFERA_ASSIGN_OR_RETURN(attr->name, expect_name());
      attr->args.push_back(std::move(node));
      node = std::move(attr);
    } else if (at_op("[")) {
      INFERA_ASSIGN_OR_RETURN(node, subscript(std::move(node)));
    } else if (at_op("(")) {
      auto call = make(ExprKind::kCall, cur().line);
      call->args.push_back(std::move(node));
      INFERA_RETURN_IF_ERROR(call_args(*call));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

Result<ExprPtr> Parser::subscript(ExprPtr node) {
  int line = toks_[p_++].line;  // '['
  std::vector<ExprPtr> parts(1);
  bool is_slice = false;
  while (!at_op("]")) {
    if (skip_op(":")) {
      is_slice = true;
      if (parts.size() >= 3) return fail("invalid slice");
      parts.emplace_back();
      continue;
    }
    if (parts.back()) return fail(fmt::format("expected ']', got {}", describe()));
    INFERA_ASSIGN_OR_RETURN(parts.back(), expression());
  }
  ++p_;
  if (!is_slice) {
    if (!parts[0]) return fail("expected subscript expression");
    auto sub = make(ExprKind::kSubscript, line);
    sub->args.push_back(std::move(node));
    sub->args.push_back(std::move(parts[0]));
    return sub;
  }
  auto slice = make(ExprKind::kSlice, line);
  slice->args.push_back(std::move(node));
  parts.resize(3);
  for (auto& part : parts) slice->args.push_back(std::move(part));
  return slice;
}

Status Parser::call_args(Expr& call) {
  ++p_;  // '('
  bool first = true;
  while (!skip_op(")")) {
    if (!first) INFERA_RETURN_IF_ERROR(expect_op(","));
    first = false;
    if (skip_op(")")) break;
    if (at_op("*") || at_op("**")) return fail("*args and **kwargs in calls are not supported");
    if (cur().type == Tok::kName && look().type == Tok::kOp && look().text == "=") {
      std::string key = toks_[p_].text;
      p_ += 2;
      INFERA_ASSIGN_OR_RETURN(ExprPtr value, expression());
      call.kwargs.emplace_back(std::move(key), std::move(value));
      continue;
    }
    if (!call.kwargs.empty()) return fail("positional argument follows keyword argument");
    INFERA_ASSIGN_OR_RETURN(ExprPtr arg, expression());
    call.args.push_back(std::move(arg));
  }
  return Status::ok();
}

Result<ExprPtr> Parser::filter_expr(ExprPtr node) {
  while (true) {
    if (skip_op("|")) {
      INFERA_ASSIGN_OR_RETURN(node, filter(std::move(node)));
    } else if (at_name("is")) {
      ++p_;
      INFERA_ASSIGN_OR_RETURN(node, test(std::move(node)));
    } else if (at_op("(")) {
      auto call = make(ExprKind::kCall, cur().line);
      call->args.push_back(std::move(node));
      INFERA_RETURN_IF_ERROR(call_args(*call));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

Result<ExprPtr> Parser::filter(ExprPtr node) {
  int line = cur().line;
  INFERA_ASSIGN_OR_RETURN(std::string name, expect_name());
  if (!is_known_filter(name)) return error("chat template line {}: unknown filter '{}'", line, name);
  auto f = make(ExprKind::kFilter, line);
  f->name = name;
  f->args.push_back(std::move(node));
  if (at_op("(")) INFERA_RETURN_IF_ERROR(call_args(*f));
  return f;
}

Result<ExprPtr> Parser::test(ExprPtr node) {
  int line = cur().line;
  auto t = make(ExprKind::kTest, line);
  t->negated = skip_name("not");
  INFERA_ASSIGN_OR_RETURN(t->name, expect_name());
  if (!is_known_test(t->name)) return error("chat template line {}: unknown test '{}'", line, t->name);
  t->args.push_back(std::move(node));
  if (at_op("(")) {
    INFERA_RETURN_IF_ERROR(call_args(*t));
    return t;
  }
  bool arg_start = cur().type == Tok::kName || cur().type == Tok::kString || cur().type == Tok::kInt ||
                   cur().type == Tok::kFloat || at_op("(") || at_op("[") || at_op("{");
  if (arg_start && !at_name("else") && !at_name("or") && !at_name("and")) {
    if (at_name("is")) return fail("you cannot chain multiple tests with is");
    INFERA_ASSIGN_OR_RETURN(ExprPtr arg, primary());
    INFERA_ASSIGN_OR_RETURN(arg, postfix(std::move(arg)));
    t->args.push_back(std::move(arg));
  }
  return t;
}

}  // namespace

Result<Body> parse_template(const std::string& source, const LexOptions& opts) {
  INFERA_ASSIGN_OR_RETURN(std::vector<Token> toks, tokenize(source, opts));
  Parser parser(std::move(toks));
  return parser.run();
}

}  // namespace infera::jinja
