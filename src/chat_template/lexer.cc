// Splits template source into text and tag tokens, applying Jinja2's whitespace control
// (`-`/`+` markers, trim_blocks, lstrip_blocks, keep_trailing_newline).
#include <cstring>

#include "chat_template/ast.h"
#include "chat_template/pystr.h"

namespace infera::jinja {
namespace {

std::string normalize_newlines(const std::string& src, bool keep_trailing_newline) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length in bytes of the Unicode whitespace character at s[i], or 0.
size_t space_at(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return pystr::is_space(c) ? 1 : 0;
  size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + len > s.size()) return 0;
  std::u32string u = pystr::decode(s.substr(i, len));
  return (u.size() == 1 && pystr::is_space(u[0])) ? len : 0;
}

size_t skip_spaces(const std::string& s, size_t i) {
  while (i < s.size()) {
    size_t n = space_at(s, i);
    if (n == 0) break;
    i += n;
  }
  return i;
}

int count_newlines(const std::string& s, size_t from, size_t to) {
  int n = 0;
  for (size_t i = from; i < to && i < s.size(); ++i) n += s[i] == '\n';
  return n;
}

class Lexer {
 public:
  Lexer(std::string src, const LexOptions& opts) : src_(std::move(src)), opts_(opts) {}
  Result<std::vector<Token>> run();

 private:
  Status text_before_tag(size_t tag, char kind, char sign);
  Result<size_t> comment(size_t p);
  Result<size_t> tag(size_t p, char kind);
  Result<size_t> expression_token(size_t i, int& depth);
  Result<size_t> raw_block(size_t p);
  size_t after_end(size_t end, char sign, bool block_like);
  bool is_raw_start(size_t p, size_t* after) const;
  void emit(Tok type, std::string text) { tokens_.push_back(Token{type, std::move(text), line_}); }

  std::string src_;
  LexOptions opts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int line_ = 1;
};

Result<std::vector<Token>> Lexer::run() {
  src_ = normalize_newlines(src_, opts_.keep_trailing_newline);
  while (pos_ < src_.size()) {
    size_t p = pos_;
    while ((p = src_.find('{', p)) != std::string::npos) {
      if (p + 1 < src_.size() && std::strchr("{%#", src_[p + 1])) break;
      ++p;
    }
    if (p == std::string::npos) {
      emit(Tok::kText, src_.substr(pos_));
      break;
    }
    char kind = src_[p + 1];
    char sign = (p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+')) ? src_[p + 2] : 0;
    INFERA_RETURN_IF_ERROR(text_before_tag(p, kind, sign));
    size_t body = p + 2 + (sign ? 1 : 0);
    size_t next;
    if (kind == '#') {
      INFERA_ASSIGN_OR_RETURN(next, comment(body));
    } else if (size_t after; kind == '%' && is_raw_start(body, &after)) {
      INFERA_ASSIGN_OR_RETURN(next, raw_block(after));
    } else {
      INFERA_ASSIGN_OR_RETURN(next, tag(body, kind));
    }
    pos_ = next;
  }
  tokens_.push_back(Token{Tok::kEnd, "", line_});
  return std::move(tokens_);
}

Status Lexer::text_before_tag(size_t tag_pos, char kind, char sign) {
  std::string text = src_.substr(pos_, tag_pos - pos_);
  int start_line = line_;
  line_ += count_newlines(src_, pos_, tag_pos);
  if (sign == '-') {
    text = pystr::strip(text, nullptr, false, true);
  } else if (sign != '+' && opts_.lstrip_blocks && kind != '{') {
    size_t nl = text.rfind('\n');
    size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
    bool line_starting = pos_ == 0 || src_[pos_ - 1] == '\n';
    if ((l_pos > 0 || line_starting) && text.find_first_not_of(" \t", l_pos) == std::string::npos) {
      text.resize(l_pos);
    }
  }
  if (!text.empty()) tokens_.push_back(Token{Tok::kText, std::move(text), start_line});
  return Status::ok();
}

// Position after the tag end at `end` (which points at `%}`, `}}` or `#}`), given the sign before it.
size_t Lexer::after_end(size_t end, char sign, bool block_like) {
  size_t p = end + 2;
  if (sign == '-') return skip_spaces(src_, p);
  if (sign == '+' || !block_like || !opts_.trim_blocks) return p;
  return (p < src_.size() && src_[p] == '\n') ? p + 1 : p;
}

Result<size_t> Lexer::comment(size_t p) {
  size_t end = src_.find("#}", p);
  if (end == std::string::npos) return error("chat template line {}: missing end of comment tag", line_);
  char sign = (end > p && (src_[end - 1] == '-' || src_[end - 1] == '+')) ? src_[end - 1] : 0;
  size_t next = after_end(end, sign, true);
  line_ += count_newlines(src_, p, next);
  return next;
}

bool Lexer::is_raw_start(size_t p, size_t* after) const {
  size_t i = skip_spaces(src_, p);
  if (src_.compare(i, 3, "raw") != 0) return false;
  i = skip_spaces(src_, i + 3);
  if (src_.compare(i, 3, "-%}") == 0) {
    *after = skip_spaces(src_, i + 3);
    return true;
  }
  if (src_.compare(i, 2, "%}") == 0) {
    *after = i + 2;
    return true;
  }
  return false;
}

Result<size_t> Lexer::raw_block(size_t p) {
  line_ += count_newlines(src_, pos_, p);
  size_t search = p;
  while (true) {
    size_t open = src_.find("{%", search);
    if (open == std::string::npos) return error("chat template line {}: missing {{% endraw %}}", line_);
    char sign = (open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+')) ? src_[open + 2] : 0;
    size_t i = skip_spaces(src_, open + 2 + (sign ? 1 : 0));
    if (src_.compare(i, 6, "endraw") != 0) {
      search = open + 2;
      continue;
    }
    i = skip_spaces(src_, i + 6);
    char end_sign = (src_[i] == '-' || src_[i] == '+') ? src_[i] : 0;
    if (src_.compare(i + (end_sign ? 1 : 0), 2, "%}") != 0) {
      search = open + 2;
      continue;
    }
    pos_ = p;
    INFERA_RETURN_IF_ERROR(text_before_tag(open, '%', sign));
    size_t next = after_end(i + (end_sign ? 1 : 0), end_sign, true);
    line_ += count_newlines(src_, open, next);
    return next;
  }
}

Result<size_t> Lexer::tag(size_t p, char kind) {
  bool block = kind == '%';
  emit(block ? Tok::kBlockBegin : Tok::kVarBegin, "");
  const char* close = block ? "%}" : "}}";
  int depth = 0;
  size_t i = p;
  while (true) {
    size_t ws = skip_spaces(src_, i);
    line_ += count_newlines(src_, i, ws);
    i = ws;
    if (i >= src_.size()) return error("chat template line {}: unexpected end of template, tag not closed", line_);
    if (depth == 0) {
      char sign = (src_[i] == '-' || src_[i] == '+') ? src_[i] : 0;
      if (sign == '+' && !block) sign = 0;
      if (src_.compare(i + (sign ? 1 : 0), 2, close) == 0) {
        emit(block ? Tok::kBlockEnd : Tok::kVarEnd, "");
        size_t next = after_end(i + (sign ? 1 : 0), sign, block);
        line_ += count_newlines(src_, i, next);
        return next;
      }
    }
    INFERA_ASSIGN_OR_RETURN(i, expression_token(i, depth));
  }
}

bool is_name_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool is_name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// Decodes a Python string literal body (escapes as in the 'unicode-escape' codec).
Result<std::string> unescape(const std::string& s, int line) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out.push_back(s[i]);
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'v': out.push_back('\v'); break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case '\n': break;
      case 'x':
      case 'u':
      case 'U': {
        size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        std::string hex = s.substr(i + 1, n);
        if (hex.size() != n || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
          return error("chat template line {}: truncated \\{} escape", line, c);
        uint32_t cp = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
        if (cp > 0x10FFFF) return error("chat template line {}: illegal Unicode character", line);
        pystr::append_utf8(out, cp);
        i += n;
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          uint32_t cp = 0;
          size_t k = 0;
          while (k < 3 && i < s.size() && s[i] >= '0' && s[i] <= '7') cp = cp * 8 + (s[i++] - '0'), ++k;
          --i;
          pystr::append_utf8(out, cp);
        } else {
          out.push_back('\\');
          out.push_back(c);
        }
    }
  }
  return out;
}

Result<size_t> Lexer::expression_token(size_t i, int& depth) {
  unsigned char c = static_cast<unsigned char>(src_[i]);
  if (c == '\'' || c == '"') {
    size_t j = i + 1;
    while (j < src_.size() && src_[j] != static_cast<char>(c)) j += src_[j] == '\\' ? 2 : 1;
    if (j >= src_.size()) return error("chat template line {}: unterminated string", line_);
    INFERA_ASSIGN_OR_RETURN(std::string s, unescape(src_.substr(i + 1, j - i - 1), line_));
    emit(Tok::kString, std::move(s));
    line_ += count_newlines(src_, i, j);
    return j + 1;
  }
  if (std::isdigit(c)) {
    size_t j = i;
    while (j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
    bool is_float = false;
    if (j + 1 < src_.size() && src_[j] == '.' && std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
      is_float = true;
      for (++j; j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) || src_[j] == '_');) ++j;
    }
    if (j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      size_t k = j + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
        is_float = true;
        for (j = k; j < src_.size() && std::isdigit(static_cast<unsigned char>(src_[j]));) ++j;
      }
    }
    std::string num;
    for (size_t k = i; k < j; ++k)
      if (src_[k] != '_') num.push_back(src_[k]);
    Token t{is_float ? Tok::kFloat : Tok::kInt, num, line_};
    if (is_float) {
      t.float_value = std::stod(num);
    } else {
      errno = 0;
      t.int_value = std::strtoll(num.c_str(), nullptr, 10);
      if (errno == ERANGE) return error("chat template line {}: integer literal too large", line_);
    }
    tokens_.push_back(std::move(t));
    return j;
  }
  if (is_name_start(c)) {
    size_t j = i;
    while (j < src_.size() && is_name_char(static_cast<unsigned char>(src_[j]))) ++j;
    emit(Tok::kName, src_.substr(i, j - i));
    return j;
  }
  static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
  for (const char* op : kTwo) {
    if (src_.compare(i, 2, op) == 0) {
      emit(Tok::kOp, op);
      return i + 2;
    }
  }
  if (std::strchr("+-/*%~<>=()[]{},.:|", c) && c != 0) {
    if (c == '(' || c == '[' || c == '{') ++depth;
    if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
    emit(Tok::kOp, std::string(1, static_cast<char>(c)));
    return i + 1;
  }
  return error("chat template line {}: unexpected character '{}'", line_, static_cast<char>(c));
}

}  // namespace

Result<std::vector<Token>> tokenize(const std::string& source, const LexOptions& opts) {
  Lexer lexer(source, opts);
  return lexer.run();
}

}  // namespace infera::jinja
