// tokenizer.json parsing of arbitrary bytes, then encoding with whatever loaded.
#include "formats/tokenizer_json.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  infera::fuzz::MemFile f(data, size);
  auto t = infera::Tokenizer::from_hf(f.path());
  if (t.ok()) {
    const std::vector<int32_t> ids = (*t)->encode("Hello <think> wörld 123 \xF0\x9F\x98\x80!");
    (void)(*t)->decode(ids, true);
  }
  return 0;
}
