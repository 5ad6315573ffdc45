// Reads the vocabulary of a Hugging Face byte-level BPE tokenizer (tokenizer.json, plus
// tokenizer_config.json beside it when present) into the flat form GGUF stores:
// tokens by id, GGUF token types, merges as "a b" strings, special ids and the chat template.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace infera {

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct TokenizerData {
  std::vector<std::string> tokens;  // by id, byte-level form ("Ġthe")
  std::vector<TokenType> types;     // by id
  std::vector<bool> special;        // by id: HF added token with "special": true
  std::vector<std::string> merges;  // rank order, "a b"
  int64_t bos_id = -1, eos_id = -1, pad_id = -1;
  bool add_bos = true, add_eos = false;
  std::string chat_template;  // empty when none
  // Pipeline settings (tokenizer.json only; GGUF derives them from tokenizer.ggml.pre).
  bool nfc = false;                         // normalizer NFC (alone or in a Sequence)
  std::vector<std::string> split_patterns;  // pre-tokenizer Split regexes, applied in order
  bool ignore_merges = false;               // model.ignore_merges
  int64_t post_bos_id = -1;                 // BOS the post-processor prepends, -1 if none
};

// `path`: a tokenizer.json file or a folder holding one.
Result<TokenizerData> read_hf_tokenizer(const std::string& path);

// GGUF converters mark an added token CONTROL when it is special or looks special
// ("<|...|>" or "<｜...｜>"), USER_DEFINED otherwise.
TokenType added_token_type(const std::string& content, bool special);

// GPT-2's byte-to-unicode map: the printable stand-in for each byte (e.g. 0x20 -> "Ġ"), in UTF-8.
std::string byte_level_char(uint8_t b);

}  // namespace infera
