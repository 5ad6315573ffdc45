// Incremental detokenizer for streaming: feed ids one by one, get text that never ends in a
// partial UTF-8 sequence. Concatenating every chunk plus finish() equals Tokenizer::decode.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace infera {

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& t, bool skip_special) : t_(t), skip_special_(skip_special) {}
  // Text completed by this token (may be empty while a character is still incomplete).
  std::string push(int32_t id);
  // Whatever is left at the end of the stream (incomplete bytes become U+FFFD).
  std::string finish();

 private:
  const Tokenizer& t_;
  bool skip_special_;
  std::string pending_;  // bytes not yet emitted
};

}  // namespace infera
