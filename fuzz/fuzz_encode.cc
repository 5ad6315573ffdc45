// Encoding arbitrary bytes with the R1-Qwen tokenizer layout (tiny vocabulary): no crash, and
// without added-token parsing the ids decode back to the (sanitized, NFC) input.
#include <cstdlib>
#include <memory>

#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<infera::Tokenizer> tok = [] {
    auto t = infera::Tokenizer::from_hf(INFERA_FIXTURES_DIR "/models/tiny-qwen2-hf/tokenizer.json");
    if (!t.ok()) std::abort();
    return std::move(*t);
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (auto mode : {infera::SpecialTokens::kNone, infera::SpecialTokens::kAll, infera::SpecialTokens::kNonSpecialOnly}) {
    const std::vector<int32_t> ids = tok->encode(text, {true, mode});
    infera::IncrementalDetokenizer d(*tok, true);
    std::string streamed;
    for (int32_t id : ids) streamed += d.push(id);
    streamed += d.finish();
    if (streamed != tok->decode(ids, true)) std::abort();
    if (mode == infera::SpecialTokens::kNone) {
      const std::vector<int32_t> plain(ids.begin() + 1, ids.end());  // drop BOS
      if (tok->decode(plain, false) != infera::tok::nfc(infera::tok::sanitize_utf8(text))) std::abort();
    }
  }
  return 0;
}
