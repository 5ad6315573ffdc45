// Regular expressions (guided_regex) of arbitrary text: compiled to an automaton or refused with a
// Status, within the limits; never a crash, hang or runaway allocation. An automaton that compiles
// is walked over the input's own bytes: every state it reaches must still be able to match.
#include "engine/regex_dfa.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string pattern(reinterpret_cast<const char*>(data), size);
  infera::RegexLimits limits;
  limits.max_dfa_states = 5000;  // smaller than the server's, to keep each run short
  limits.max_work = 5000000;
  auto dfa = infera::compile_regex(pattern, limits);
  if (!dfa.ok()) return 0;
  const infera::ByteDfa& d = **dfa;
  int32_t s = d.start;
  for (size_t i = 0; i < size && s >= 0; ++i) {
    s = d.step(s, data[i]);
    if (s >= 0 && !d.accept[static_cast<size_t>(s)] && !d.live[static_cast<size_t>(s)]) __builtin_trap();  // a dead end kept
  }
  (void)infera::regex_for_json_string(pattern);
  return 0;
}
