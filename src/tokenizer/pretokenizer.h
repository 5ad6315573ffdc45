// Pre-tokenization: splits text into pieces with a sequence of regexes (PCRE2, JIT), each in
// Hugging Face "Isolated" mode: the matches and the gaps between them are all pieces.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace infera::tok {

class Regex;  // a compiled PCRE2 pattern

class PreTokenizer {
 public:
  // Each pattern splits every piece produced by the previous ones.
  static Result<PreTokenizer> create(const std::vector<std::string>& patterns);
  // Regexes for a GGUF tokenizer.ggml.pre value; unknown values are an error.
  static Result<std::vector<std::string>> patterns_for_gguf_pre(const std::string& pre);
  static std::string gpt2_pattern();

  PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Appends the pieces of `text` (valid UTF-8) to `out` as views into `text`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace infera::tok
