#include "engine/regex_dfa.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <utf8proc.h>

namespace infera {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr int kMaxRepeat = 1000;
constexpr int kMaxNesting = 200;
constexpr size_t kMaxPatternBytes = size_t{512} << 10;
constexpr size_t kMaxClassRanges = 500000;  // over all the classes of a pattern (\W alone is ~700)

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // sorted, disjoint, inclusive

Ranges normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) out.back().second = std::max(out.back().second, hi);
    else out.emplace_back(lo, hi);
  }
  return out;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : r) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

Ranges subtract(const Ranges& a, const Ranges& b) {
  Ranges keep = complement(b), out;
  for (const auto& [lo, hi] : a)
    for (const auto& [klo, khi] : keep)
      if (std::max(lo, klo) <= std::min(hi, khi)) out.emplace_back(std::max(lo, klo), std::min(hi, khi));
  return normalize(out);
}

// The Unicode digit, word and space sets (Python's \d \w \s on text; \s also JavaScript's),
// taken broadly: they are only ever complemented (\D, or \d in [^...]).
struct UnicodeSets {
  Ranges digit, word, space;
};

const UnicodeSets& unicode_sets() {
  static const UnicodeSets sets = [] {
    UnicodeSets u;
    auto add = [](Ranges& r, uint32_t cp) {
      if (!r.empty() && r.back().second + 1 == cp) r.back().second = cp;
      else r.emplace_back(cp, cp);
    };
    for (uint32_t cp = 0; cp <= kMaxCodePoint; ++cp) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      const bool digit = cat == UTF8PROC_CATEGORY_ND;
      const bool letter = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
                          cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_LO;
      const bool number = digit || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
      const bool space = cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP ||
                         (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 || cp == 0xFEFF;
      // Unassigned code points count in every set: a newer Unicode than utf8proc's may assign them.
      const bool unassigned = cat == UTF8PROC_CATEGORY_CN;
      if (digit || unassigned) add(u.digit, cp);
      if (letter || number || cp == '_' || unassigned) add(u.word, cp);
      if (space || unassigned) add(u.space, cp);
    }
    return u;
  }();
  return sets;
}

// The regex as a tree: a node pool, children by index.
struct Node {
  enum Kind : uint8_t { kEmpty, kClass, kConcat, kAlt, kRepeat } kind = kEmpty;
  Ranges ranges;            // kClass
  std::vector<int32_t> kids;
  int min = 0, max = -1;    // kRepeat (max -1: unbounded)
};

class Parser {
 public:
  Parser(std::string_view s, std::vector<Node>& pool) : s_(s), pool_(pool) {}

  Result<int32_t> parse() {
    size_t begin = 0, end = s_.size();
    if (s_.substr(0, 1) == "^") begin = 1;
    else if (s_.substr(0, 2) == "\\A") begin = 2;
    if (end > begin && s_[end - 1] == '$' && !escaped_at(end - 1)) --end;
    else if (end >= begin + 2 && s_.substr(end - 2) == "\\Z" && !escaped_at(end - 2)) end -= 2;
    s_ = s_.substr(0, end);
    i_ = begin;
    const int32_t root = alt(0);
    if (!err_.empty()) return Status::error(err_);
    if (i_ < s_.size()) return error("unbalanced parenthesis at position {}", i_);
    return root;
  }

 private:
  // True when the byte at `pos` is preceded by an odd number of backslashes.
  bool escaped_at(size_t pos) const {
    size_t n = 0;
    while (pos > n && s_[pos - n - 1] == '\\') ++n;
    return n % 2 == 1;
  }
  int32_t add(Node n) {
    pool_.push_back(std::move(n));
    return static_cast<int32_t>(pool_.size() - 1);
  }
  int32_t fail(std::string msg) {
    if (err_.empty()) err_ = std::move(msg);
    i_ = s_.size();
    return add(Node{});
  }
  int32_t klass(Ranges r) {
    Node n;
    n.kind = Node::kClass;
    n.ranges = normalize(std::move(r));
    if ((ranges_ += n.ranges.size()) > kMaxClassRanges) return fail("the pattern's character classes are too large");
    return add(std::move(n));
  }
  bool at_end() const { return i_ >= s_.size(); }

  // One code point of the pattern (UTF-8).
  uint32_t code_point() {
    const auto c = static_cast<uint8_t>(s_[i_]);
    const int len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || i_ + static_cast<size_t>(len) > s_.size()) {
      fail("the pattern is not valid UTF-8");
      return 0;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<uint8_t>(s_[i_ + static_cast<size_t>(k)]);
      if ((b & 0xC0) != 0x80) {
        fail("the pattern is not valid UTF-8");
        return 0;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    i_ += static_cast<size_t>(len);
    return cp;
  }

  int32_t alt(int depth) {
    if (depth > kMaxNesting) return fail("the pattern nests groups too deeply");
    std::vector<int32_t> branches{concat(depth)};
    while (!at_end() && s_[i_] == '|') {
      ++i_;
      branches.push_back(concat(depth));
    }
    if (branches.size() == 1) return branches[0];
    Node n;
    n.kind = Node::kAlt;
    n.kids = std::move(branches);
    return add(std::move(n));
  }

  int32_t concat(int depth) {
    Node n;
    n.kind = Node::kConcat;
    while (!at_end() && s_[i_] != '|' && s_[i_] != ')') {
      const int32_t a = atom(depth);
      n.kids.push_back(quantified(a));
    }
    if (n.kids.size() == 1) return n.kids[0];
    if (n.kids.empty()) return add(Node{});
    return add(std::move(n));
  }

  // Reads "{n}", "{n,}", "{n,m}" at i_; false (i_ unchanged) when it is not one (a literal '{').
  bool counted(int* lo, int* hi) {
    size_t j = i_ + 1;
    auto number = [&](int* out) {
      const size_t from = j;
      long v = 0;
      while (j < s_.size() && s_[j] >= '0' && s_[j] <= '9') {
        v = std::min<long>(v * 10 + (s_[j] - '0'), 1000000);
        ++j;
      }
      *out = static_cast<int>(v);
      return j > from;
    };
    int a = 0, b = -1;
    const bool has_a = number(&a);
    if (j < s_.size() && s_[j] == '}') {
      if (!has_a) return false;
      b = a;
    } else if (j < s_.size() && s_[j] == ',') {
      ++j;
      if (!number(&b)) b = -1;
      if (j >= s_.size() || s_[j] != '}') return false;
      if (!has_a) a = 0;
    } else {
      return false;
    }
    i_ = j + 1;
    *lo = a;
    *hi = b;
    return true;
  }

  int32_t quantified(int32_t a) {
    bool quantified = false;
    while (!at_end()) {
      int lo = 0, hi = -1;
      const char c = s_[i_];
      if (c == '*') ++i_;
      else if (c == '+') ++i_, lo = 1;
      else if (c == '?') ++i_, hi = 1;
      else if (c != '{' || !counted(&lo, &hi)) break;
      if (quantified) return fail(fmt::format("multiple repeat at position {}", i_ - 1));
      if (hi >= 0 && hi < lo) return fail(fmt::format("min repeat greater than max repeat at position {}", i_ - 1));
      if (lo > kMaxRepeat || hi > kMaxRepeat)
        return fail(fmt::format("a repeat count above {} is not supported (position {})", kMaxRepeat, i_ - 1));
      if (!at_end() && s_[i_] == '?') ++i_;  // lazy: the same strings match
      else if (!at_end() && s_[i_] == '+') return fail("possessive quantifiers are not supported");
      Node n;
      n.kind = Node::kRepeat;
      n.kids = {a};
      n.min = lo;
      n.max = hi;
      a = add(std::move(n));
      quantified = true;
    }
    return a;
  }

  int32_t atom(int depth) {
    const size_t at = i_;
    const char c = s_[i_];
    switch (c) {
      case '(': {
        ++i_;
        if (!at_end() && s_[i_] == '?') {
          if (s_.substr(i_, 2) == "?:") {
            i_ += 2;
          } else if (s_.substr(i_, 3) == "?P<" || (s_.substr(i_, 2) == "?<" && s_.substr(i_, 3) != "?<=" && s_.substr(i_, 3) != "?<!")) {
            const size_t close = s_.find('>', i_);
            if (close == std::string_view::npos) return fail(fmt::format("missing '>' in a group name at position {}", at));
            const size_t name = s_[i_ + 1] == 'P' ? i_ + 3 : i_ + 2;
            const std::string_view id = s_.substr(name, close - name);
            const bool ok = !id.empty() && !std::isdigit(static_cast<unsigned char>(id[0])) &&
                            std::all_of(id.begin(), id.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; });
            if (!ok) return fail(fmt::format("bad character in group name '{}' at position {}", id, at));
            i_ = close + 1;
          } else if (s_.substr(i_, 2) == "?=" || s_.substr(i_, 2) == "?!" || s_.substr(i_, 3) == "?<=" || s_.substr(i_, 3) == "?<!") {
            return fail(fmt::format("lookaround assertions are not supported (position {})", at));
          } else {
            return fail(fmt::format("the group syntax at position {} is not supported (inline flags, conditionals, comments)", at));
          }
        }
        const int32_t inner = alt(depth + 1);
        if (at_end() || s_[i_] != ')') return fail(fmt::format("missing ')', unterminated subpattern at position {}", at));
        ++i_;
        return inner;
      }
      case '[':
        return char_class();
      case '.':
        ++i_;
        return klass(complement({{'\n', '\n'}}));
      case '*':
      case '+':
      case '?':
        return fail(fmt::format("nothing to repeat at position {}", at));
      case '{': {
        int lo = 0, hi = 0;
        const size_t save = i_;
        if (counted(&lo, &hi)) return fail(fmt::format("nothing to repeat at position {}", at));
        i_ = save + 1;
        return klass({{'{', '{'}});
      }
      case '^':
        return fail(fmt::format("'^' is only supported at the start of the pattern (position {})", at));
      case '$':
        return fail(fmt::format("'$' is only supported at the end of the pattern (position {})", at));
      case '\\': {
        Ranges r;
        if (!escape(false, &r)) return add(Node{});
        return klass(std::move(r));
      }
      default: {
        const uint32_t cp = code_point();
        return klass({{cp, cp}});
      }
    }
  }

  // An escape at i_ ('\\'): its characters in *out; false on an error (set).
  bool escape(bool in_class, Ranges* out, bool negated_class = false) {
    const size_t at = i_;
    ++i_;
    if (at_end()) return fail("bad escape (end of pattern)"), false;
    const char e = s_[i_++];
    auto hex = [&](int digits) -> bool {
      if (i_ + static_cast<size_t>(digits) > s_.size()) return false;
      uint32_t v = 0;
      for (int k = 0; k < digits; ++k) {
        const char h = s_[i_++];
        const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return false;
        v = v * 16 + static_cast<uint32_t>(d);
      }
      if (v > kMaxCodePoint) return false;
      out->emplace_back(v, v);
      return true;
    };
    // \d \w \s differ between Python (Unicode), JavaScript (ASCII \d \w, Unicode \s) and others:
    // a class keeps to what every dialect agrees on, so an output matches in each of them. Where
    // the class counts positively that is the ASCII set; where it counts negatively (\D, or \d
    // inside [^...]) the complement of the Unicode set.
    const bool positive = !negated_class;
    const UnicodeSets& u = unicode_sets();
    switch (e) {
      case 'd': *out = positive ? Ranges{{'0', '9'}} : u.digit; return true;
      case 'D': *out = complement(positive ? u.digit : Ranges{{'0', '9'}}); return true;
      case 'w': *out = positive ? normalize({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}) : u.word; return true;
      case 'W': *out = complement(positive ? u.word : normalize({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}})); return true;
      case 's': *out = positive ? Ranges{{'\t', '\r'}, {' ', ' '}} : u.space; return true;
      case 'S': *out = complement(positive ? u.space : Ranges{{'\t', '\r'}, {' ', ' '}}); return true;
      case 'n': out->emplace_back('\n', '\n'); return true;
      case 't': out->emplace_back('\t', '\t'); return true;
      case 'r': out->emplace_back('\r', '\r'); return true;
      case 'f': out->emplace_back('\f', '\f'); return true;
      case 'v': out->emplace_back('\v', '\v'); return true;
      case 'a': out->emplace_back('\a', '\a'); return true;
      case '0': {  // \0, \0o, \0oo: an octal character code (Python)
        uint32_t v = 0;
        for (int k = 0; k < 2 && !at_end() && s_[i_] >= '0' && s_[i_] <= '7'; ++k) v = v * 8 + static_cast<uint32_t>(s_[i_++] - '0');
        out->emplace_back(v, v);
        return true;
      }
      case 'x': if (hex(2)) return true; break;
      case 'u': if (hex(4)) return true; break;
      case 'U': if (hex(8)) return true; break;
      case 'b':
        if (in_class) return out->emplace_back('\b', '\b'), true;
        fail(fmt::format("word boundaries (\\b) are not supported (position {})", at));
        return false;
      default:
        // Three octal digits are a character code (\101 is 'A', as Python reads it); else a backreference.
        if (e >= '0' && e <= '3' && i_ + 1 < s_.size() && s_[i_] >= '0' && s_[i_] <= '7' && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '7') {
          const uint32_t v = static_cast<uint32_t>((e - '0') * 64 + (s_[i_] - '0') * 8 + (s_[i_ + 1] - '0'));
          i_ += 2;
          out->emplace_back(v, v);
          return true;
        }
        if (e >= '1' && e <= '9') {
          fail(fmt::format("backreferences are not supported (position {})", at));
          return false;
        }
        if (std::isalnum(static_cast<unsigned char>(e))) {
          fail(fmt::format("bad escape \\{} at position {}", e, at));
          return false;
        }
        --i_;
        {
          const uint32_t cp = code_point();
          out->emplace_back(cp, cp);
        }
        return err_.empty();
    }
    fail(fmt::format("bad escape at position {}", at));
    return false;
  }

  int32_t char_class() {
    const size_t at = i_;
    ++i_;
    bool negate = false;
    if (!at_end() && s_[i_] == '^') negate = true, ++i_;
    Ranges r;
    bool first = true;
    for (;;) {
      if (at_end()) return fail(fmt::format("unterminated character set at position {}", at));
      if (s_[i_] == ']' && !first) break;
      first = false;
      // One item: a character (possibly the start of a range) or a class escape.
      auto read = [&](Ranges* out) {
        if (s_[i_] == '\\') return escape(true, out, negate);
        const uint32_t cp = code_point();
        out->emplace_back(cp, cp);
        return err_.empty();
      };
      Ranges item;
      if (!read(&item)) return add(Node{});
      if (item.size() == 1 && item[0].first == item[0].second && i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
        ++i_;
        Ranges end;
        if (!read(&end)) return add(Node{});
        if (end.size() != 1 || end[0].first != end[0].second)
          return fail(fmt::format("bad character range at position {}", at));
        if (end[0].first < item[0].first) return fail(fmt::format("bad character range at position {}", at));
        item[0].second = end[0].first;
      }
      r.insert(r.end(), item.begin(), item.end());
    }
    ++i_;
    r = normalize(std::move(r));
    return klass(negate ? complement(r) : r);
  }

  std::string_view s_;
  size_t i_ = 0;
  std::vector<Node>& pool_;
  std::string err_;
  size_t ranges_ = 0;
};

// ---- Thompson NFA over bytes ----

struct NfaEdge {
  uint8_t lo, hi;
  int32_t to;
};
struct NfaState {
  std::vector<int32_t> eps;
  std::vector<NfaEdge> edges;
};

class NfaBuilder {
 public:
  NfaBuilder(const std::vector<Node>& pool, size_t limit) : pool_(pool), limit_(limit) {}
  struct Frag {
    int32_t start, end;
  };

  Frag build(int32_t id) {
    const Node& n = pool_[static_cast<size_t>(id)];
    if (too_big()) return empty();
    switch (n.kind) {
      case Node::kEmpty: return empty();
      case Node::kClass: return klass(n.ranges);
      case Node::kConcat: {
        Frag f = build(n.kids[0]);
        for (size_t k = 1; k < n.kids.size(); ++k) f = join(f, build(n.kids[k]));
        return f;
      }
      case Node::kAlt: {
        const int32_t s = add(), e = add();
        for (int32_t k : n.kids) {
          const Frag f = build(k);
          states[static_cast<size_t>(s)].eps.push_back(f.start);
          states[static_cast<size_t>(f.end)].eps.push_back(e);
        }
        return {s, e};
      }
      case Node::kRepeat: {
        Frag f = empty();
        for (int k = 0; k < n.min && !too_big(); ++k) f = join(f, build(n.kids[0]));
        if (n.max < 0) {
          const int32_t s = add(), e = add();
          const Frag c = build(n.kids[0]);
          states[static_cast<size_t>(s)].eps = {c.start, e};
          states[static_cast<size_t>(c.end)].eps.push_back(c.start);
          states[static_cast<size_t>(c.end)].eps.push_back(e);
          return join(f, {s, e});
        }
        // The optional copies in a chain, each end with a way out to one shared end (a closure
        // from any copy is then a step or two, not a walk out through every copy after it).
        if (n.max == n.min) return f;
        const int32_t end = add();
        int32_t cur = f.end;
        for (int k = n.min; k < n.max && !too_big(); ++k) {
          const Frag c = build(n.kids[0]);
          states[static_cast<size_t>(cur)].eps.push_back(end);
          states[static_cast<size_t>(cur)].eps.push_back(c.start);
          cur = c.end;
        }
        states[static_cast<size_t>(cur)].eps.push_back(end);
        return {f.start, end};
      }
    }
    return empty();
  }
  bool too_big() const { return states.size() > limit_; }

  std::vector<NfaState> states;

 private:
  int32_t add() {
    states.emplace_back();
    return static_cast<int32_t>(states.size() - 1);
  }
  Frag empty() {
    const int32_t s = add();
    return {s, s};
  }
  Frag join(Frag a, Frag b) {
    states[static_cast<size_t>(a.end)].eps.push_back(b.start);
    return {a.start, b.end};
  }
  void edge(int32_t from, uint8_t lo, uint8_t hi, int32_t to) { states[static_cast<size_t>(from)].edges.push_back({lo, hi, to}); }

  // A code point range as byte sequences: split so each piece is one range per byte.
  void utf8(uint32_t lo, uint32_t hi, int len, int32_t s, int32_t e) {
    for (int k = 1; k < len; ++k) {
      const uint32_t m = (1u << (6 * k)) - 1;
      if ((lo & ~m) != (hi & ~m)) {
        if ((lo & m) != 0) return utf8(lo, lo | m, len, s, e), utf8((lo | m) + 1, hi, len, s, e);
        if ((hi & m) != m) return utf8(lo, (hi & ~m) - 1, len, s, e), utf8(hi & ~m, hi, len, s, e);
      }
    }
    std::array<uint8_t, 4> a{}, b{};
    encode(lo, len, a.data());
    encode(hi, len, b.data());
    // Trailing bytes that may be any continuation byte go through states shared by the whole
    // class (tail_[k]: k more of them to the end), so a class's automaton stays small.
    int free_from = len;
    while (free_from > 1 && a[static_cast<size_t>(free_from - 1)] == 0x80 && b[static_cast<size_t>(free_from - 1)] == 0xBF) --free_from;
    int32_t cur = s;
    for (int k = 0; k < free_from; ++k) {
      const int32_t to = k == free_from - 1 ? tail(len - free_from, e) : add();
      edge(cur, a[static_cast<size_t>(k)], b[static_cast<size_t>(k)], to);
      cur = to;
    }
  }
  int32_t tail(int k, int32_t e) {
    if (k == 0) return e;
    int32_t& t = tail_[static_cast<size_t>(k)];
    if (t < 0) {
      t = add();
      edge(t, 0x80, 0xBF, tail(k - 1, e));
    }
    return t;
  }
  static void encode(uint32_t cp, int len, uint8_t* out) {
    if (len == 1) {
      out[0] = static_cast<uint8_t>(cp);
      return;
    }
    static constexpr uint8_t kLead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (int k = len - 1; k > 0; --k, cp >>= 6) out[k] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    out[0] = static_cast<uint8_t>(kLead[len] | cp);
  }
  Frag klass(const Ranges& ranges) {
    const int32_t s = add(), e = add();
    tail_.fill(-1);
    static constexpr uint32_t kEnds[4] = {0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
    for (auto [lo, hi] : ranges) {
      uint32_t from = 0;
      for (int len = 1; len <= 4; ++len) {
        const uint32_t a = std::max(lo, from), b = std::min(hi, kEnds[len - 1]);
        from = kEnds[len - 1] + 1;
        if (a > b) continue;
        // Surrogates are not characters: never in UTF-8.
        if (len == 3 && a <= 0xDFFF && b >= 0xD800) {
          if (a < 0xD800) utf8(a, 0xD7FF, 3, s, e);
          if (b > 0xDFFF) utf8(0xE000, b, 3, s, e);
          continue;
        }
        utf8(a, b, len, s, e);
      }
    }
    return {s, e};
  }

  const std::vector<Node>& pool_;
  size_t limit_;
  std::array<int32_t, 4> tail_{};  // the class being built: states k continuation bytes before its end
};

// ---- subset construction ----

Result<std::shared_ptr<const ByteDfa>> determinize(const std::vector<NfaState>& nfa, int32_t start, int32_t accept,
                                                    const RegexLimits& limits) {
  size_t work = 0;
  auto dfa = std::make_shared<ByteDfa>();
  std::array<bool, 257> cut{};
  cut[0] = true;
  for (const NfaState& s : nfa)
    for (const NfaEdge& e : s.edges) cut[e.lo] = cut[static_cast<size_t>(e.hi) + 1] = true;
  dfa->byte_class.resize(256);
  std::vector<uint8_t> rep;
  for (int b = 0; b < 256; ++b) {
    if (cut[static_cast<size_t>(b)]) rep.push_back(static_cast<uint8_t>(b));
    dfa->byte_class[static_cast<size_t>(b)] = static_cast<uint8_t>(rep.size() - 1);
  }
  dfa->n_classes = static_cast<int32_t>(rep.size());

  std::vector<uint32_t> mark(nfa.size(), 0);
  uint32_t generation = 0;
  std::vector<int32_t> stack;
  auto closure = [&](std::vector<int32_t>& set) {
    ++generation;
    stack = set;
    set.clear();
    for (int32_t s : stack) mark[static_cast<size_t>(s)] = generation;
    while (!stack.empty()) {
      const int32_t s = stack.back();
      stack.pop_back();
      ++work;  // every state walked, kept or not
      set.push_back(s);
      for (int32_t t : nfa[static_cast<size_t>(s)].eps)
        if (mark[static_cast<size_t>(t)] != generation) mark[static_cast<size_t>(t)] = generation, stack.push_back(t);
    }
    // Only states with byte edges, or the accepting one, tell sets apart.
    std::erase_if(set, [&](int32_t s) { return nfa[static_cast<size_t>(s)].edges.empty() && s != accept; });
    std::sort(set.begin(), set.end());
  };
  std::unordered_map<std::string, int32_t> ids;
  std::vector<std::vector<int32_t>> sets;
  auto intern = [&](const std::vector<int32_t>& set) -> int32_t {
    std::string key(reinterpret_cast<const char*>(set.data()), set.size() * sizeof(int32_t));
    auto [it, fresh] = ids.emplace(std::move(key), static_cast<int32_t>(sets.size()));
    if (fresh) {
      sets.push_back(set);
      work += 3 * set.size();  // kept twice (the set and its key): memory counts as work
    }
    return it->second;
  };
  std::vector<int32_t> init{start};
  closure(init);
  dfa->start = intern(init);
  std::vector<int32_t> moved;
  for (size_t d = 0; d < sets.size(); ++d) {
    if (sets.size() > limits.max_dfa_states)
      return error("the pattern needs more than {} automaton states; simplify it", limits.max_dfa_states);
    if (work > limits.max_work) return error("the pattern is too complex to compile (its automaton grows too fast); simplify it");
    for (int32_t c = 0; c < dfa->n_classes; ++c) {
      if (work > limits.max_work) return error("the pattern is too complex to compile (its automaton grows too fast); simplify it");
      const uint8_t b = rep[static_cast<size_t>(c)];
      moved.clear();
      for (int32_t s : sets[d]) {
        work += 1 + nfa[static_cast<size_t>(s)].edges.size();
        for (const NfaEdge& e : nfa[static_cast<size_t>(s)].edges)
          if (e.lo <= b && b <= e.hi) moved.push_back(e.to);
      }
      if (moved.empty()) {
        dfa->next.push_back(-1);
        continue;
      }
      closure(moved);
      dfa->next.push_back(intern(moved));
    }
    dfa->accept.push_back(std::binary_search(sets[d].begin(), sets[d].end(), accept) ? 1 : 0);
  }
  // States from which no match can be completed are dead: cut every way into them.
  const size_t n = sets.size(), k = static_cast<size_t>(dfa->n_classes);
  std::vector<std::vector<int32_t>> into(n);
  for (size_t s = 0; s < n; ++s)
    for (size_t c = 0; c < k; ++c)
      if (const int32_t t = dfa->next[s * k + c]; t >= 0) into[static_cast<size_t>(t)].push_back(static_cast<int32_t>(s));
  std::vector<uint8_t> good(n, 0);
  std::vector<int32_t> todo;
  for (size_t s = 0; s < n; ++s)
    if (dfa->accept[s]) good[s] = 1, todo.push_back(static_cast<int32_t>(s));
  while (!todo.empty()) {
    const int32_t t = todo.back();
    todo.pop_back();
    for (int32_t s : into[static_cast<size_t>(t)])
      if (!good[static_cast<size_t>(s)]) good[static_cast<size_t>(s)] = 1, todo.push_back(s);
  }
  if (!good[static_cast<size_t>(dfa->start)]) return error("the pattern matches no text");
  dfa->live.assign(n, 0);
  for (size_t s = 0; s < n; ++s)
    for (size_t c = 0; c < k; ++c) {
      int32_t& t = dfa->next[s * k + c];
      if (t >= 0 && !good[static_cast<size_t>(t)]) t = -1;
      if (t >= 0) dfa->live[s] = 1;
    }
  // States that every JSON-string character leads back to: the UTF-8 sequences as byte ranges.
  struct Seq {
    std::array<std::pair<uint8_t, uint8_t>, 4> r;
    int len;
  };
  static const Seq kText[] = {
      {{{{0x20, 0x21}}}, 1}, {{{{0x23, 0x5B}}}, 1}, {{{{0x5D, 0x7F}}}, 1},
      {{{{0xC2, 0xDF}, {0x80, 0xBF}}}, 2},
      {{{{0xE0, 0xE0}, {0xA0, 0xBF}, {0x80, 0xBF}}}, 3}, {{{{0xE1, 0xEC}, {0x80, 0xBF}, {0x80, 0xBF}}}, 3},
      {{{{0xED, 0xED}, {0x80, 0x9F}, {0x80, 0xBF}}}, 3}, {{{{0xEE, 0xEF}, {0x80, 0xBF}, {0x80, 0xBF}}}, 3},
      {{{{0xF0, 0xF0}, {0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}}, 4},
      {{{{0xF1, 0xF3}, {0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}}, 4},
      {{{{0xF4, 0xF4}, {0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}}}, 4}};
  dfa->loops_on_text.assign(n, 0);
  for (size_t s = 0; s < n; ++s) {
    bool loops = true;
    for (const Seq& q : kText) {
      // The distinct states after each byte position (few: the classes collapse the ranges).
      std::vector<int32_t> at{static_cast<int32_t>(s)}, next;
      for (int k = 0; k < q.len && loops; ++k) {
        next.clear();
        for (int32_t t : at)
          for (int b = q.r[static_cast<size_t>(k)].first; b <= q.r[static_cast<size_t>(k)].second && loops; ++b) {
            const int32_t u = dfa->step(t, static_cast<uint8_t>(b));
            if (u < 0) loops = false;
            else if (std::find(next.begin(), next.end(), u) == next.end()) next.push_back(u);
          }
        at.swap(next);
      }
      if (!loops || at.size() != 1 || at[0] != static_cast<int32_t>(s)) {
        loops = false;
        break;
      }
    }
    dfa->loops_on_text[s] = loops;
  }
  return std::shared_ptr<const ByteDfa>(std::move(dfa));
}

Result<std::pair<std::vector<Node>, int32_t>> parse_pattern(std::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) return error("the pattern is longer than {} KB", kMaxPatternBytes / 1024);
  std::vector<Node> pool;
  Parser p(pattern, pool);
  Result<int32_t> root = p.parse();
  if (!root) return Status::error(fmt::format("invalid regex: {}", root.error()));
  return std::make_pair(std::move(pool), *root);
}

std::string code_point_escape(uint32_t cp) {
  return cp <= 0xFFFF ? fmt::format("\\u{:04X}", cp) : fmt::format("\\U{:08X}", cp);
}

// Writes the tree back as a pattern this parser (and Python's re) reads the same.
void print(const std::vector<Node>& pool, int32_t id, std::string& out) {
  const Node& n = pool[static_cast<size_t>(id)];
  switch (n.kind) {
    case Node::kEmpty: out += "(?:)"; return;
    case Node::kClass:
      if (n.ranges.empty()) {
        out += "[^\\x00-\\U0010FFFF]";
        return;
      }
      out += '[';
      for (auto [lo, hi] : n.ranges) {
        out += code_point_escape(lo);
        if (hi != lo) out += '-' + code_point_escape(hi);
      }
      out += ']';
      return;
    case Node::kConcat:
      for (int32_t k : n.kids) print(pool, k, out);
      return;
    case Node::kAlt:
      out += "(?:";
      for (size_t k = 0; k < n.kids.size(); ++k) {
        if (k) out += '|';
        print(pool, n.kids[k], out);
      }
      out += ')';
      return;
    case Node::kRepeat:
      out += "(?:";
      print(pool, n.kids[0], out);
      out += n.max < 0 ? fmt::format("){{{},}}", n.min) : fmt::format("){{{},{}}}", n.min, n.max);
      return;
  }
}

}  // namespace

Result<std::shared_ptr<const ByteDfa>> compile_regex(std::string_view pattern, const RegexLimits& limits) {
  auto parsed = parse_pattern(pattern);
  if (!parsed) return parsed.status();
  auto& [pool, root] = *parsed;
  NfaBuilder b(pool, limits.max_nfa_states);
  const NfaBuilder::Frag f = b.build(root);
  if (b.too_big()) return error("the pattern needs more than {} automaton states; simplify it", limits.max_nfa_states);
  return determinize(b.states, f.start, f.end, limits);
}

struct RegexCache::Entry {
  std::string pattern;
  std::shared_ptr<const ByteDfa> dfa;  // or
  std::string error;
  size_t bytes = 0;
};
struct RegexCache::State {
  mutable std::mutex mu;
  std::list<Entry> lru;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index;
  size_t bytes = 0, max_bytes = 0;
  RegexLimits limits;
};

RegexCache::RegexCache(size_t max_bytes, RegexLimits limits) : state_(std::make_shared<State>()) {
  state_->max_bytes = max_bytes;
  state_->limits = limits;
}

std::optional<Result<std::shared_ptr<const ByteDfa>>> RegexCache::find(const std::string& pattern) {
  State& st = *state_;
  std::lock_guard<std::mutex> lock(st.mu);
  auto it = st.index.find(pattern);
  if (it == st.index.end()) return std::nullopt;
  st.lru.splice(st.lru.begin(), st.lru, it->second);
  const Entry& e = *it->second;
  if (e.dfa) return Result<std::shared_ptr<const ByteDfa>>(e.dfa);
  return Result<std::shared_ptr<const ByteDfa>>(Status::error(e.error));
}

Result<std::shared_ptr<const ByteDfa>> RegexCache::get(const std::string& pattern) {
  if (auto hit = find(pattern)) return std::move(*hit);
  Result<std::shared_ptr<const ByteDfa>> r = compile_regex(pattern, state_->limits);
  Entry e;
  e.pattern = pattern;
  if (r) e.dfa = *r;
  else e.error = r.error();
  e.bytes = pattern.size() + (e.dfa ? e.dfa->next.size() * sizeof(int32_t) + e.dfa->states() * 3 : e.error.size());
  State& st = *state_;
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.index.count(pattern) == 0 && e.bytes <= st.max_bytes) {
    st.bytes += e.bytes;
    st.lru.push_front(std::move(e));
    st.index[pattern] = st.lru.begin();
    while (st.bytes > st.max_bytes) {
      st.bytes -= st.lru.back().bytes;
      st.index.erase(st.lru.back().pattern);
      st.lru.pop_back();
    }
  }
  return r;
}

size_t RegexCache::size() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lru.size();
}

std::optional<bool> regex_includes(const ByteDfa& outer, const ByteDfa& inner, size_t max_pairs) {
  // Pairs (inner state, outer state or -1 once outer can match nothing more), breadth first.
  const auto key = [&](int32_t i, int32_t o) { return static_cast<uint64_t>(i) * (outer.states() + 1) + static_cast<uint64_t>(o + 1); };
  std::unordered_map<uint64_t, bool> seen;
  std::vector<std::pair<int32_t, int32_t>> todo{{inner.start, outer.start}};
  seen[key(inner.start, outer.start)] = true;
  while (!todo.empty()) {
    const auto [i, o] = todo.back();
    todo.pop_back();
    if (inner.accept[static_cast<size_t>(i)] && (o < 0 || !outer.accept[static_cast<size_t>(o)])) return false;
    for (int b = 0; b < 256; ++b) {
      const int32_t ni = inner.step(i, static_cast<uint8_t>(b));
      if (ni < 0) continue;
      const int32_t no = o < 0 ? -1 : outer.step(o, static_cast<uint8_t>(b));
      if (seen.emplace(key(ni, no), true).second) {
        if (seen.size() > max_pairs) return std::nullopt;
        todo.emplace_back(ni, no);
      }
    }
  }
  return true;
}

bool regex_full_match(const ByteDfa& dfa, std::string_view text) {
  int32_t s = dfa.start;
  for (char c : text)
    if ((s = dfa.step(s, static_cast<uint8_t>(c))) < 0) return false;
  return dfa.accept[static_cast<size_t>(s)] != 0;
}

Result<std::string> regex_for_json_string(std::string_view pattern) {
  auto parsed = parse_pattern(pattern);
  if (!parsed) return parsed.status();
  std::vector<Node>& pool = parsed->first;  // (not a structured binding: clang 14 cannot capture one)
  const int32_t root = parsed->second;
  // A character that cannot stand unescaped in a JSON string matches as its escape: '"' as \",
  // '\\' as \\, a control character as \n, \t ... or \u00XX. (U+2028 and U+2029 are left out:
  // JavaScript's '.' excludes them, and a schema's pattern is ECMA-262.)
  const Ranges escaped{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
  auto literal = [&](const std::string& text) {
    Node seq;
    seq.kind = Node::kConcat;
    for (unsigned char c : text) {
      Node ch;
      ch.kind = Node::kClass;
      ch.ranges = {{c, c}};
      pool.push_back(std::move(ch));
      seq.kids.push_back(static_cast<int32_t>(pool.size() - 1));
    }
    pool.push_back(std::move(seq));
    return static_cast<int32_t>(pool.size() - 1);
  };
  const size_t n_nodes = pool.size();
  for (size_t i = 0; i < n_nodes; ++i) {
    if (pool[i].kind != Node::kClass) continue;
    Ranges special;
    for (auto [lo, hi] : pool[i].ranges)
      for (auto [elo, ehi] : escaped)
        if (std::max(lo, elo) <= std::min(hi, ehi)) special.emplace_back(std::max(lo, elo), std::min(hi, ehi));
    Ranges plain = subtract(pool[i].ranges, normalize({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0x2028, 0x2029}}));
    if (special.empty()) {
      pool[i].ranges = std::move(plain);
      continue;
    }
    std::vector<int32_t> branches;
    if (!plain.empty()) {
      Node keep;
      keep.kind = Node::kClass;
      keep.ranges = std::move(plain);
      pool.push_back(std::move(keep));
      branches.push_back(static_cast<int32_t>(pool.size() - 1));
    }
    for (auto [lo, hi] : special)
      for (uint32_t c = lo; c <= hi; ++c) {
        static const char* kShort[0x20] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                           "\\b", "\\t", "\\n", nullptr, "\\f", "\\r"};
        const std::string esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : kShort[c] ? kShort[c] : fmt::format("\\u{:04x}", c);
        branches.push_back(literal(esc));
      }
    Node alt;
    alt.kind = Node::kAlt;
    alt.kids = std::move(branches);
    pool[i] = std::move(alt);
  }
  std::string out;
  print(pool, root, out);
  return out;
}

std::string regex_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\.^$|?*+()[]{}-#&~ \t\n\r\v\f").find(c) != std::string_view::npos) {
      if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (c == '\r') out += "\\r";
      else if (c == '\v') out += "\\v";
      else if (c == '\f') out += "\\f";
      else out += '\\', out += c;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace infera
