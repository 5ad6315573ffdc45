// Which files of a repository a pull fetches.
//
//   default     an HF model folder: *.safetensors, *.json, tokenizer files (*.model, *.tiktoken),
//               *.txt (merges, vocab), *.jinja (chat templates); other weight formats are skipped
//   --include   glob patterns (fnmatch, '*' also matches '/'), as huggingface_hub's allow_patterns
//   --quant Q   the GGUF files whose name holds Q (case-insensitive, between separators), every part
//               of a split set (name-00001-of-00003.gguf); an incomplete set is an error
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace infera::hub {

struct Selection {
  std::vector<std::string> include;  // glob patterns
  std::string quant;                 // a GGUF quantization name ("Q4_K_M")
};

bool glob_match(const std::string& pattern, const std::string& name);

// The GGUF quantization names found in `files` ("Q4_K_M", "Q8_0", "F16"), sorted, unique.
std::vector<std::string> gguf_quants(const std::vector<std::string>& files);

// Picks from `files` (repository-relative paths); an empty pick is an error naming what is there.
Result<std::vector<std::string>> select_files(const std::vector<std::string>& files, const Selection& sel,
                                              const std::string& repo);

// What `--model` takes for the picked files: the folder, or the first GGUF file (part 1 of a split set).
std::string model_entry(const std::string& folder, const std::vector<std::string>& picked);

}  // namespace infera::hub
