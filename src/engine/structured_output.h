// Structured outputs: constraints on the text a request may generate, applied to each step's
// logits (tokens that cannot continue a valid output get -inf) as vLLM's guided decoding does.
//
//   auto vocab = std::make_shared<TokenBytes>(...);           // once per model: every id's bytes
//   OutputConstraintFactory f = json_object_constraint(vocab); // per request (response_format json_object)
//   auto c = f();                                              // per generated sequence
//   c->mask(logits, eos_ids);  c->accept(sampled);             // each step
//
// A JSON object (RFC 8259, whitespace between tokens, at most 64 whitespace bytes in a row, nesting
// up to 64, strings of valid UTF-8 without raw control characters), exactly one of a list of
// choices, or a whole match of a regular expression (guided_regex; a JSON schema is compiled to
// one in server/json_schema.h). Checking the whole vocabulary each step walks the ids in byte
// order and reuses the state of each shared prefix, so a token whose prefix was refused is skipped
// without feeding it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/regex_dfa.h"

namespace infera {

// The bytes of every token id (ids the tokenizer does not have: empty, never allowed) and which
// ids are special (never allowed while a constraint is active: they are not text).
struct TokenBytes {
  std::vector<std::string> bytes;
  std::vector<bool> special;
  // Filled by finalize(): the text ids sorted by their bytes, laid out for one sequential walk:
  // sorted[k]'s bytes are flat[offset[k], offset[k + 1]), sharing lcp[k] leading bytes with sorted[k - 1].
  std::vector<int32_t> sorted;
  std::vector<uint32_t> offset, lcp;
  std::string flat;
  // sorted[k] is whole UTF-8 text with no '"', '\\' or control byte: inside a JSON string it always fits.
  std::vector<bool> plain;
  void finalize();
};

class OutputConstraint {
 public:
  virtual ~OutputConstraint() = default;
  // Sets the logits of ids that cannot come next to -inf; `eos_ids` stay only where the output may
  // end. A step with no allowed id allows the EOS ids (the request then ends rather than hangs).
  virtual void mask(std::span<float> logits, std::span<const int32_t> eos_ids) = 0;
  virtual void accept(int32_t token) = 0;
};

using OutputConstraintFactory = std::function<std::unique_ptr<OutputConstraint>()>;

// `activate_after`: a token id after which the constraint starts (e.g. </think> of a reasoning
// model, whose reasoning is free text), or -1 to constrain from the first token.
OutputConstraintFactory json_object_constraint(std::shared_ptr<const TokenBytes> vocab, int32_t activate_after = -1);
// The whole output matches the automaton (guided_regex, JSON schemas: engine/regex_dfa.h).
OutputConstraintFactory regex_constraint(std::shared_ptr<const TokenBytes> vocab, std::shared_ptr<const ByteDfa> dfa,
                                         int32_t activate_after = -1);
OutputConstraintFactory choice_constraint(std::shared_ptr<const TokenBytes> vocab, std::vector<std::string> choices,
                                          int32_t activate_after = -1);

// The JSON recognizer by itself (tests): true while `text` can still be the start of a JSON object;
// `*complete` tells whether it is one whole object.
bool json_object_prefix(std::string_view text, bool* complete);

}  // namespace infera
