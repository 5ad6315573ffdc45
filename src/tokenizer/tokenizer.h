// Byte-level BPE tokenizer with Hugging Face `tokenizers` semantics (what vLLM uses).
//
//   auto t = Tokenizer::load("model.gguf" | "hf-folder" | "tokenizer.json");
//   std::vector<int32_t> ids = t->encode(text, {.add_special_tokens = false});
//   std::string s = t->decode(ids, /*skip_special=*/true);
//
// Encoding: (1) added tokens are found in the raw text, leftmost-longest; (2) the text between
// them is NFC-normalized (when the tokenizer has that normalizer), split by the pre-tokenizer
// regexes, mapped to GPT-2's byte-level alphabet and merged by BPE rank; (3) BOS is prepended when
// add_special_tokens and the tokenizer adds it. Thread-safe; a word cache speeds up repeats.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "tokenizer/merge_table.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab_index.h"

namespace infera {

enum class SpecialTokens {
  kNone,            // added tokens are plain text
  kAll,             // every added token is matched (HF default)
  kNonSpecialOnly,  // only added tokens with special=false (HF split_special_tokens=True)
};

struct EncodeOptions {
  bool add_special_tokens = false;  // prepend BOS (when the tokenizer adds one)
  SpecialTokens specials = SpecialTokens::kAll;
};

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;  // HF "special": dropped by skip_special_tokens
};

class Tokenizer {
 public:
  // A GGUF file, an HF model folder or a folder/file with tokenizer.json (+ tokenizer_config.json).
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& path);
  static Result<std::unique_ptr<Tokenizer>> from_hf(const std::string& tokenizer_json);
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& f);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& o = {}) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;
  // Bytes of one token as it appears in decoded text (byte-level decoded; added tokens raw).
  std::string token_bytes(int32_t id) const;

  size_t vocab_size() const { return tokens_.size(); }
  const std::string& token_text(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  bool is_special(int32_t id) const;
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  bool add_bos() const { return add_bos_; }
  const std::string& chat_template() const { return chat_template_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }

 private:
  Status init_vocab(const std::vector<std::string>& merges, const std::string& where);
  void finish_init();
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;  // by id, byte-level form (added tokens: their content)
  tok::VocabIndex vocab_;  // text -> id over tokens_ (never resized after init)
  tok::MergeTable merges_;  // (left id, right id) -> rank, result id
  std::vector<AddedToken> added_;
  std::vector<int8_t> added_kind_;  // by id: 0 regular, 1 added non-special, 2 added special
  std::vector<std::vector<int32_t>> added_by_first_byte_;  // [256] -> indexes into added_, longest first
  tok::PreTokenizer pre_;
  bool nfc_ = false;
  bool ignore_merges_ = false;  // Llama-3: a piece that is a whole vocab entry is taken as is
  int32_t bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = false;
  std::string chat_template_;
  int32_t byte_ids_[256] = {};  // id of each byte's single-character token

  mutable std::mutex cache_mu_;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace infera
