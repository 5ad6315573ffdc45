#include "tokenizer/detokenizer.h"

#include "tokenizer/unicode.h"

namespace infera {

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && t_.is_special(id)) return {};
  pending_ += t_.token_bytes(id);
  // Emit everything up to the start of a trailing sequence that may still complete.
  size_t cut = pending_.size();
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    const uint8_t c = static_cast<uint8_t>(pending_[pending_.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (c >= 0xC0 && c < 0xF8 && need > back) cut = pending_.size() - back;
    break;
  }
  std::string out = tok::sanitize_utf8(std::string_view(pending_).substr(0, cut));
  pending_.erase(0, cut);
  return out;
}

std::string IncrementalDetokenizer::finish() {
  std::string out = tok::sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace infera
