// JSON schemas (response_format json_schema, guided_json) of arbitrary JSON: a pattern or a Status
// within the size limits, and every pattern it makes compiles or is refused by the automaton
// limits; never a crash, hang or runaway allocation.
#include "engine/regex_dfa.h"
#include "server/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto schema = nlohmann::ordered_json::parse(data, data + size, nullptr, false);
  if (schema.is_discarded()) return 0;
  auto re = infera::json_schema_regex(schema);
  if (!re.ok()) return 0;
  infera::RegexLimits limits;
  limits.max_dfa_states = 5000;
  limits.max_work = 5000000;
  auto dfa = infera::compile_regex(*re, limits);
  // A syntax error means the compiler wrote a bad pattern (limits are fine: too large, too deep).
  const bool limit = !dfa.ok() && (dfa.error().find("too large") != std::string::npos ||
                                   dfa.error().find("too deeply") != std::string::npos ||
                                   dfa.error().find("longer than") != std::string::npos);
  if (!dfa.ok() && !limit && dfa.error().find("invalid regex") != std::string::npos) __builtin_trap();
  return 0;
}
