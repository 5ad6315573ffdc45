// Regular expressions compiled to a deterministic automaton over bytes, for structured outputs
// (guided_regex, and JSON schemas, which become regular expressions): each step of a constrained
// request walks the vocabulary through the automaton, one table lookup per byte.
//
//   Result<std::shared_ptr<const ByteDfa>> dfa = compile_regex(R"(\d{3}-[a-z]+)");
//   int32_t s = (*dfa)->start;
//   for (uint8_t b : text) if ((s = (*dfa)->step(s, b)) < 0) break;   // -1: no match can follow
//   bool whole = s >= 0 && (*dfa)->accept[s];
//
// The syntax is Python's `re` (what vLLM's guided_regex takes) without what no finite automaton
// can do: literals, `.`, classes `[a-z\d]` and `[^...]`, escapes (\d \w \s and their negations,
// \n \t \r \f \v \xHH \uHHHH \UHHHHHHHH, escaped punctuation), groups `(...)`, `(?:...)`,
// `(?P<name>...)`, alternation, `* + ? {n} {n,} {n,m}` (lazy forms match the same strings), and
// `^`/`$`/`\A`/`\Z` at the ends. The whole output must match (vLLM's guided_regex does the same).
// Characters are Unicode code points in UTF-8; `.` is any but "\n". \w, \d and \s are ASCII.
// Backreferences, lookaround, \b and inline flags are refused with a message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace infera {

struct ByteDfa {
  std::vector<uint8_t> byte_class;  // 256 entries: the class of each byte
  int32_t n_classes = 0;
  std::vector<int32_t> next;        // next[state * n_classes + class]: the next state, or -1
  std::vector<uint8_t> accept;      // the input so far is a whole match
  std::vector<uint8_t> live;        // some byte leads on (not only the end of the output)
  // Every character that may stand unescaped in a JSON string (valid UTF-8 other than '"', '\\'
  // and controls) leads from this state back to it (inside a string of any length), so text made
  // of such characters fits here without being walked (TokenBytes::plain).
  std::vector<uint8_t> loops_on_text;
  int32_t start = 0;

  int32_t step(int32_t state, uint8_t byte) const {
    return next[static_cast<size_t>(state) * static_cast<size_t>(n_classes) + byte_class[byte]];
  }
  size_t states() const { return accept.size(); }
};

struct RegexLimits {
  size_t max_nfa_states = 200000;
  size_t max_dfa_states = 50000;
  size_t max_work = 50000000;  // NFA states visited while building the DFA (~0.2 s): then a 400, not a stall
};

Result<std::shared_ptr<const ByteDfa>> compile_regex(std::string_view pattern, const RegexLimits& limits = {});

// Compiled automata by pattern, shared by requests: the same schema or regex compiles once. The
// least recently used entries go once their tables pass `max_bytes`; failures are kept too (a
// pattern refused for its size is not compiled again). Thread-safe; compiles outside the lock.
class RegexCache {
 public:
  explicit RegexCache(size_t max_bytes = size_t{64} << 20, RegexLimits limits = {});
  Result<std::shared_ptr<const ByteDfa>> get(const std::string& pattern);
  // Without compiling: the cached answer, if any.
  std::optional<Result<std::shared_ptr<const ByteDfa>>> find(const std::string& pattern);
  size_t size() const;

 private:
  struct Entry;
  struct State;
  std::shared_ptr<State> state_;
};

// Whether every text `inner` matches, `outer` matches too (a walk over pairs of states); nullopt
// when that takes more than `max_pairs` pairs.
std::optional<bool> regex_includes(const ByteDfa& outer, const ByteDfa& inner, size_t max_pairs = 1000000);

// True when `text` (bytes) matches the whole pattern (tests).
bool regex_full_match(const ByteDfa& dfa, std::string_view text);

// The pattern rewritten so that no character it matches is '"', '\\' or a control character
// (below U+0020): what may stand unescaped inside a JSON string. Used for a JSON schema's
// "pattern", whose matches go between quotes. Errors as compile_regex.
Result<std::string> regex_for_json_string(std::string_view pattern);

// `text` with every regex metacharacter escaped: a pattern that matches exactly `text`.
std::string regex_escape(std::string_view text);

}  // namespace infera
