// Tokens and syntax tree of the chat-template language.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "chat_template/value.h"

namespace infera::jinja {

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class Tok { kText, kBlockBegin, kBlockEnd, kVarBegin, kVarEnd, kName, kString, kInt, kFloat, kOp, kEnd };

struct Token {
  Tok type;
  std::string text;  // text data, name, operator, or decoded string literal
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

Result<std::vector<Token>> tokenize(const std::string& source, const LexOptions& opts);

enum class ExprKind {
  kLiteral, kName, kList, kTuple, kDict, kAttr, kSubscript, kSlice, kCall, kFilter, kTest,
  kUnary, kBinary, kAnd, kOr, kNot, kCompare, kCond,
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  int line = 0;
  Value literal;
  std::string name;                // variable, attribute, filter/test name, unary/binary operator
  std::vector<ExprPtr> args;       // operands; for Slice: obj, start, stop, step (may be null)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;    // Compare operators
  bool negated = false;            // `is not`
};

enum class StmtKind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kCallBlock, kFilterBlock, kBreak, kContinue };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;                  // Text data; macro name
  ExprPtr expr;                      // output value, if/for condition, iterable, set value, call expression
  ExprPtr filter;                    // for-loop `if` filter; filter block filter (args[0] is the placeholder)
  std::vector<std::string> targets;  // loop / set target names
  std::string attr;                  // `set ns.attr`
  std::vector<MacroParam> params;
  Body body;
  Body else_body;
};

Result<Body> parse_template(const std::string& source, const LexOptions& opts);

// Filter and test names the renderer implements (checked at parse time).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace infera::jinja
