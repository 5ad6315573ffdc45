// GGUF parsing of arbitrary bytes: must return a Status, never crash or read out of bounds.
#include "formats/gguf.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  infera::fuzz::MemFile f(data, size);
  auto g = infera::GgufFile::open(f.path());
  if (g.ok()) {
    for (const auto& [k, v] : g->metadata()) (void)v.to_display();
    for (const auto& t : g->tensors())
      if (t.view.nbytes > 0) (void)t.view.data[t.view.nbytes - 1];  // every view lies inside the file
  }
  return 0;
}
