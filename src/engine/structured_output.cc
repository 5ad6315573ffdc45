#include "engine/structured_output.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace infera {

void TokenBytes::finalize() {
  sorted.clear();
  for (size_t i = 0; i < bytes.size(); ++i)
    if (!bytes[i].empty() && !(i < special.size() && special[i])) sorted.push_back(static_cast<int32_t>(i));
  std::sort(sorted.begin(), sorted.end(), [&](int32_t a, int32_t b) {
    return bytes[static_cast<size_t>(a)] < bytes[static_cast<size_t>(b)];
  });
  flat.clear();
  offset.assign(1, 0);
  lcp.clear();
  plain.clear();
  const std::string* prev = nullptr;
  for (int32_t id : sorted) {
    const std::string& b = bytes[static_cast<size_t>(id)];
    uint32_t l = 0;
    if (prev)
      while (l < prev->size() && l < b.size() && (*prev)[l] == b[l]) ++l;
    lcp.push_back(l);
    bool ok = true;  // strictly valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
    for (size_t i = 0; i < b.size() && ok;) {
      const auto c = static_cast<uint8_t>(b[i]);
      const size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
      ok = len > 0 && i + len <= b.size() && c >= 0x20 && c != '"' && c != '\\';
      for (size_t j = 1; ok && j < len; ++j) {
        const auto d = static_cast<uint8_t>(b[i + j]);
        uint8_t lo = 0x80, hi = 0xBF;
        if (j == 1 && c == 0xE0) lo = 0xA0;
        if (j == 1 && c == 0xED) hi = 0x9F;
        if (j == 1 && c == 0xF0) lo = 0x90;
        if (j == 1 && c == 0xF4) hi = 0x8F;
        ok = d >= lo && d <= hi;
      }
      i += len == 0 ? 1 : len;
    }
    plain.push_back(ok);
    flat += b;
    offset.push_back(static_cast<uint32_t>(flat.size()));
    prev = &b;
  }
}

namespace {

constexpr int kMaxWhitespace = 64;
constexpr size_t kMaxDepth = 64;

// A byte-level recognizer of one JSON object: what may come next, and the open containers.
struct JsonState {
  enum Mode : uint8_t {
    kStart, kObjFirst, kKey, kColon, kValue, kArrayFirst, kAfterValue, kString, kEscape, kUnicode, kNumber,
    kLiteral, kDone
  };
  // Number phases: after '-', after a leading 0, in integer digits, after '.', in fraction digits,
  // after 'e', after the exponent's sign, in exponent digits.
  enum Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kExp, kExpSign, kExpDigits };
  // Open containers as bits (1: array, 0: object), innermost at depth - 1: a plain value, so the
  // vocabulary walk copies states cheaply.
  uint64_t arrays = 0;
  uint8_t depth = 0;
  Mode mode = kStart;
  uint8_t sub = 0;         // number phase, literal index, \u digits left
  uint8_t utf8_left = 0;   // continuation bytes still due inside a string
  uint8_t ws = 0;          // whitespace bytes in a row
  bool key = false;        // the string being read is an object key
  const char* literal = nullptr;

  bool whitespace(uint8_t c) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
    return ++ws <= kMaxWhitespace;
  }
  char top() const { return depth == 0 ? '\0' : ((arrays >> (depth - 1)) & 1) ? 'a' : 'o'; }
  bool open(char kind) {
    if (depth >= kMaxDepth) return false;
    if (kind == 'a') arrays |= uint64_t{1} << depth;
    else arrays &= ~(uint64_t{1} << depth);
    ++depth;
    mode = kind == 'o' ? kObjFirst : kArrayFirst;
    return true;
  }
  bool close(char kind) {
    if (top() != kind) return false;
    --depth;
    mode = depth == 0 ? kDone : kAfterValue;
    return true;
  }
  bool value(uint8_t c) {
    switch (c) {
      case '{': return open('o');
      case '[': return open('a');
      case '"': mode = kString, key = false; return true;
      case '-': mode = kNumber, sub = kMinus; return true;
      case '0': mode = kNumber, sub = kZero; return true;
      case 't': mode = kLiteral, literal = "true", sub = 1; return true;
      case 'f': mode = kLiteral, literal = "false", sub = 1; return true;
      case 'n': mode = kLiteral, literal = "null", sub = 1; return true;
      default:
        if (c >= '1' && c <= '9') return mode = kNumber, sub = kInt, true;
        return false;
    }
  }
  bool feed(uint8_t c) {
    const bool is_ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (!is_ws && mode != kString && mode != kEscape && mode != kUnicode) ws = 0;
    switch (mode) {
      case kStart:
        if (whitespace(c)) return true;
        return c == '{' && open('o');
      case kObjFirst:
        if (whitespace(c)) return true;
        if (c == '}') return close('o');
        if (c == '"') return mode = kString, key = true, true;
        return false;
      case kKey:
        if (whitespace(c)) return true;
        if (c == '"') return mode = kString, key = true, true;
        return false;
      case kColon:
        if (whitespace(c)) return true;
        if (c == ':') return mode = kValue, true;
        return false;
      case kValue:
        if (whitespace(c)) return true;
        return value(c);
      case kArrayFirst:
        if (whitespace(c)) return true;
        if (c == ']') return close('a');
        return value(c);
      case kAfterValue:
        if (whitespace(c)) return true;
        if (c == ',') return mode = top() == 'o' ? kKey : kValue, true;
        if (c == '}') return close('o');
        if (c == ']') return close('a');
        return false;
      case kString:
        if (utf8_left > 0) {
          if (c < 0x80 || c > 0xBF) return false;
          --utf8_left;
          return true;
        }
        if (c == '"') return mode = key ? kColon : kAfterValue, true;
        if (c == '\\') return mode = kEscape, true;
        if (c < 0x20) return false;
        if (c < 0x80) return true;
        if (c >= 0xC2 && c <= 0xDF) return utf8_left = 1, true;
        if (c >= 0xE0 && c <= 0xEF) return utf8_left = 2, true;
        if (c >= 0xF0 && c <= 0xF4) return utf8_left = 3, true;
        return false;
      case kEscape:
        if (c == 'u') return mode = kUnicode, sub = 4, true;
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't')
          return mode = kString, true;
        return false;
      case kUnicode:
        if (!std::isxdigit(c)) return false;
        if (--sub == 0) mode = kString;
        return true;
      case kNumber: {
        const bool digit = c >= '0' && c <= '9';
        switch (sub) {
          case kMinus:
            if (c == '0') return sub = kZero, true;
            return digit && (sub = kInt, true);
          case kZero:
          case kInt:
            if (digit && sub == kInt) return true;
            if (c == '.') return sub = kDot, true;
            if (c == 'e' || c == 'E') return sub = kExp, true;
            break;
          case kDot:
            return digit && (sub = kFrac, true);
          case kFrac:
            if (digit) return true;
            if (c == 'e' || c == 'E') return sub = kExp, true;
            break;
          case kExp:
            if (c == '+' || c == '-') return sub = kExpSign, true;
            return digit && (sub = kExpDigits, true);
          case kExpSign:
            return digit && (sub = kExpDigits, true);
          case kExpDigits:
            if (digit) return true;
            break;
        }
        // A complete number ends at the first byte that cannot continue it.
        if (sub == kMinus || sub == kDot || sub == kExp || sub == kExpSign) return false;
        mode = kAfterValue;
        return feed(c);
      }
      case kLiteral:
        if (c != static_cast<uint8_t>(literal[sub])) return false;
        if (literal[++sub] == '\0') mode = kAfterValue;
        return true;
      case kDone:
        return false;
    }
    return false;
  }
};

// The vocabulary walk of the byte-level constraints: ids in byte order, each resuming from the
// state after the prefix it shares with the one before, so an id refused at byte i rules out the
// ids after it that share those i + 1 bytes without feeding them. step(from, byte, to): false when
// the byte cannot follow. in_text: plain-text ids fit here without being walked (inside a string).
// Sets allowed[id] for the ids that fit; false when none does.
template <typename State, typename Step>
bool walk_vocabulary(const TokenBytes& v, const State& start, bool in_text, Step step, std::vector<State>& states,
                     std::vector<bool>& allowed) {
  states.resize(2);
  states[0] = start;
  size_t valid = 0;                      // states[0..valid] hold the states after the previous id's first bytes
  size_t failed_at = std::string::npos;  // the previous id was refused at this byte
  bool any = false;
  for (size_t k = 0; k < v.sorted.size(); ++k) {
    const size_t lcp = v.lcp[k], n = v.offset[k + 1] - v.offset[k];
    if (failed_at != std::string::npos && lcp > failed_at) continue;  // the same refused prefix
    if (in_text && v.plain[k]) {
      allowed[static_cast<size_t>(v.sorted[k])] = any = true;
      valid = std::min(valid, lcp);  // states past the shared prefix were not computed for it
      failed_at = std::string::npos;
      continue;
    }
    const auto* b = reinterpret_cast<const uint8_t*>(v.flat.data() + v.offset[k]);
    if (states.size() < n + 1) states.resize(n + 1);
    failed_at = std::string::npos;
    for (size_t i = std::min(lcp, valid); i < n; ++i)
      if (!step(states[i], b[i], states[i + 1])) {
        failed_at = i;
        break;
      }
    valid = failed_at == std::string::npos ? n : failed_at;
    if (failed_at == std::string::npos) allowed[static_cast<size_t>(v.sorted[k])] = any = true;
  }
  return any;
}

// Common to both constraints: activation after a token, EOS and dead ends.
class ConstraintBase : public OutputConstraint {
 public:
  ConstraintBase(std::shared_ptr<const TokenBytes> vocab, int32_t activate_after)
      : vocab_(std::move(vocab)), active_(activate_after < 0), activate_after_(activate_after) {}

  void mask(std::span<float> logits, std::span<const int32_t> eos_ids) override {
    if (!active_) return;
    allowed_.assign(logits.size(), false);
    const bool any = fill_allowed();
    bool some = any;
    if (can_end() || !any)  // EOS where the output may end (special ids are never text: fill_allowed left them out)
      for (int32_t e : eos_ids)
        if (e >= 0 && static_cast<size_t>(e) < logits.size()) allowed_[static_cast<size_t>(e)] = some = true;
    if (!some) return;  // nothing at all could follow (no EOS either): leave the step unconstrained
    for (size_t i = 0; i < logits.size(); ++i)
      if (!allowed_[i]) logits[i] = -INFINITY;
  }
  void accept(int32_t token) override {
    if (!active_) {
      active_ = token == activate_after_;
      return;
    }
    if (token >= 0 && static_cast<size_t>(token) < vocab_->bytes.size() && !vocab_->special[static_cast<size_t>(token)])
      advance(vocab_->bytes[static_cast<size_t>(token)]);
  }

 protected:
  virtual bool fill_allowed() = 0;  // sets allowed_ for text ids; false when none is
  virtual bool can_end() const = 0;
  virtual void advance(const std::string& bytes) = 0;
  bool text_id(size_t id) const { return id < vocab_->bytes.size() && !vocab_->special[id] && !vocab_->bytes[id].empty(); }

  std::shared_ptr<const TokenBytes> vocab_;
  std::vector<bool> allowed_;

 private:
  bool active_;
  int32_t activate_after_;
};

class JsonConstraint final : public ConstraintBase {
 public:
  using ConstraintBase::ConstraintBase;

 protected:
  bool fill_allowed() override {
    // Inside a string (no escape or character pending) plain text fits without being fed.
    const bool in_text = state_.mode == JsonState::kString && state_.utf8_left == 0;
    auto feed = [](const JsonState& from, uint8_t b, JsonState& to) {
      to = from;
      return to.feed(b);
    };
    return walk_vocabulary(*vocab_, state_, in_text, feed, states_, allowed_);
  }
  bool can_end() const override { return state_.mode == JsonState::kDone; }
  void advance(const std::string& bytes) override {
    for (char c : bytes)
      if (!state_.feed(static_cast<uint8_t>(c))) break;
  }

 private:
  JsonState state_;
  std::vector<JsonState> states_;
};

class ChoiceConstraint final : public ConstraintBase {
 public:
  ChoiceConstraint(std::shared_ptr<const TokenBytes> vocab, std::shared_ptr<const std::vector<std::string>> choices,
                   int32_t activate_after)
      : ConstraintBase(std::move(vocab), activate_after), choices_(std::move(choices)) {}

 protected:
  bool fill_allowed() override {
    bool any = false;
    for (size_t i = 0; i < vocab_->bytes.size() && i < allowed_.size(); ++i) {
      if (!text_id(i)) continue;
      const std::string& b = vocab_->bytes[i];
      for (const std::string& c : *choices_) {
        if (c.size() >= out_.size() + b.size() && c.compare(0, out_.size(), out_) == 0 &&
            c.compare(out_.size(), b.size(), b) == 0) {
          allowed_[i] = any = true;
          break;
        }
      }
    }
    return any;
  }
  bool can_end() const override { return std::find(choices_->begin(), choices_->end(), out_) != choices_->end(); }
  void advance(const std::string& bytes) override { out_ += bytes; }

 private:
  std::shared_ptr<const std::vector<std::string>> choices_;
  std::string out_;
};

// A regular expression (guided_regex, JSON schemas) as a byte automaton: the state after each
// shared prefix is one integer, so the vocabulary walk is a table lookup per new byte.
class RegexConstraint final : public ConstraintBase {
 public:
  RegexConstraint(std::shared_ptr<const TokenBytes> vocab, std::shared_ptr<const ByteDfa> dfa, int32_t activate_after)
      : ConstraintBase(std::move(vocab), activate_after), dfa_(std::move(dfa)), state_(dfa_->start) {}

 protected:
  bool fill_allowed() override {
    if (state_ < 0 || !dfa_->live[static_cast<size_t>(state_)]) return false;
    const ByteDfa& d = *dfa_;
    auto step = [&d](int32_t from, uint8_t b, int32_t& to) { return (to = d.step(from, b)) >= 0; };
    const bool in_text = d.loops_on_text[static_cast<size_t>(state_)] != 0;  // inside an unbounded JSON string
    return walk_vocabulary(*vocab_, state_, in_text, step, states_, allowed_);
  }
  bool can_end() const override { return state_ >= 0 && dfa_->accept[static_cast<size_t>(state_)]; }
  void advance(const std::string& bytes) override {
    for (char c : bytes) {
      if (state_ < 0) return;
      state_ = dfa_->step(state_, static_cast<uint8_t>(c));
    }
  }

 private:
  std::shared_ptr<const ByteDfa> dfa_;
  int32_t state_;
  std::vector<int32_t> states_;
};

}  // namespace

OutputConstraintFactory regex_constraint(std::shared_ptr<const TokenBytes> vocab, std::shared_ptr<const ByteDfa> dfa,
                                         int32_t activate_after) {
  return [vocab, dfa, activate_after] { return std::make_unique<RegexConstraint>(vocab, dfa, activate_after); };
}

OutputConstraintFactory json_object_constraint(std::shared_ptr<const TokenBytes> vocab, int32_t activate_after) {
  return [vocab, activate_after] { return std::make_unique<JsonConstraint>(vocab, activate_after); };
}

OutputConstraintFactory choice_constraint(std::shared_ptr<const TokenBytes> vocab, std::vector<std::string> choices,
                                          int32_t activate_after) {
  auto c = std::make_shared<const std::vector<std::string>>(std::move(choices));
  return [vocab, c, activate_after] { return std::make_unique<ChoiceConstraint>(vocab, c, activate_after); };
}

bool json_object_prefix(std::string_view text, bool* complete) {
  JsonState s;
  for (char c : text)
    if (!s.feed(static_cast<uint8_t>(c))) return false;
  if (complete) *complete = s.mode == JsonState::kDone;
  return true;
}

}  // namespace infera
