// Building a Tokenizer from tokenizer.json or from GGUF tokenizer metadata; both give the same ids.
#include <filesystem>
#include <set>

#include "formats/tokenizer_json.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace infera {

namespace fs = std::filesystem;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_hf(const std::string& path) {
  INFERA_ASSIGN_OR_RETURN(TokenizerData d, read_hf_tokenizer(path));
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  t->tokens_ = std::move(d.tokens);
  t->nfc_ = d.nfc;
  t->ignore_merges_ = d.ignore_merges;
  std::vector<std::string> patterns;
  for (const std::string& p : d.split_patterns) patterns.push_back(p == "GPT2" ? tok::PreTokenizer::gpt2_pattern() : p);
  auto pre = tok::PreTokenizer::create(patterns);
  if (!pre) return error("{}: {}", path, pre.error());
  t->pre_ = std::move(*pre);
  for (size_t i = 0; i < t->tokens_.size(); ++i)
    if (d.types[i] == TokenType::kControl || d.types[i] == TokenType::kUserDefined)
      t->added_.push_back({static_cast<int32_t>(i), t->tokens_[i], static_cast<bool>(d.special[i])});
  t->bos_id_ = static_cast<int32_t>(d.post_bos_id >= 0 ? d.post_bos_id : d.bos_id);
  t->add_bos_ = d.post_bos_id >= 0 || (d.add_bos && d.bos_id >= 0);
  t->eos_id_ = static_cast<int32_t>(d.eos_id);
  t->chat_template_ = std::move(d.chat_template);
  INFERA_RETURN_IF_ERROR(t->init_vocab(d.merges, path));
  return t;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& f) {
  INFERA_ASSIGN_OR_RETURN(std::string model, f.get_string("tokenizer.ggml.model"));
  if (model != "gpt2")
    return error("{}: tokenizer.ggml.model '{}' is not supported (supported: gpt2 byte-level BPE)", f.path(), model);
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  INFERA_ASSIGN_OR_RETURN(t->tokens_, f.get_string_array("tokenizer.ggml.tokens"));
  std::vector<int64_t> types(t->tokens_.size(), static_cast<int64_t>(TokenType::kNormal));
  if (f.find("tokenizer.ggml.token_type")) {
    INFERA_ASSIGN_OR_RETURN(types, f.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != t->tokens_.size())
      return error("{}: tokenizer.ggml.token_type has {} entries for {} tokens", f.path(), types.size(), t->tokens_.size());
  }
  std::vector<std::string> merges;
  if (f.find("tokenizer.ggml.merges")) {
    INFERA_ASSIGN_OR_RETURN(merges, f.get_string_array("tokenizer.ggml.merges"));
  }
  INFERA_ASSIGN_OR_RETURN(std::string pre_name, f.get_string("tokenizer.ggml.pre"));
  auto patterns = tok::PreTokenizer::patterns_for_gguf_pre(pre_name);
  if (!patterns) return error("{}: {}", f.path(), patterns.error());
  auto pre = tok::PreTokenizer::create(*patterns);
  if (!pre) return error("{}: {}", f.path(), pre.error());
  t->pre_ = std::move(*pre);
  // HF's Qwen2 tokenizer normalizes with NFC; llama.cpp does not, HF does: follow HF.
  t->nfc_ = pre_name == "deepseek-r1-qwen" || pre_name == "qwen2";
  t->ignore_merges_ = pre_name == "llama-bpe" || pre_name == "llama3" || pre_name == "llama-v3";
  INFERA_ASSIGN_OR_RETURN(int64_t bos, f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  INFERA_ASSIGN_OR_RETURN(int64_t eos, f.get_int_or("tokenizer.ggml.eos_token_id", -1));
  INFERA_ASSIGN_OR_RETURN(int64_t pad, f.get_int_or("tokenizer.ggml.padding_token_id", -1));
  INFERA_ASSIGN_OR_RETURN(t->add_bos_, f.get_bool_or("tokenizer.ggml.add_bos_token", bos >= 0));
  t->bos_id_ = static_cast<int32_t>(bos);
  t->eos_id_ = static_cast<int32_t>(eos);
  if (f.find("tokenizer.chat_template")) {
    INFERA_ASSIGN_OR_RETURN(t->chat_template_, f.get_string("tokenizer.chat_template"));
  }
  // GGUF has no HF "special" flag (what skip_special_tokens drops). Converters make every HF
  // special token CONTROL, and also the non-special tokens that look special; of those, the R1
  // turn markers, Qwen's <|EOT|> and its FIM/repo markers are the ones HF marks non-special.
  // USER_DEFINED tokens (<think>, </think>, <tool_call>) are never special.
  static const std::set<std::string> kControlButNotSpecial = {
      "<\xEF\xBD\x9C" "User\xEF\xBD\x9C>", "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>", "<|EOT|>",
      "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"};
  for (size_t i = 0; i < t->tokens_.size(); ++i) {
    const auto type = static_cast<TokenType>(types[i]);
    if (type != TokenType::kControl && type != TokenType::kUserDefined) continue;
    const std::string& c = t->tokens_[i];
    const int64_t id = static_cast<int64_t>(i);
    const bool special = id == bos || id == eos || id == pad ||
                         (type == TokenType::kControl && !kControlButNotSpecial.count(c));
    t->added_.push_back({static_cast<int32_t>(i), c, special});
  }
  INFERA_RETURN_IF_ERROR(t->init_vocab(merges, f.path()));
  return t;
}

Status Tokenizer::init_vocab(const std::vector<std::string>& merges, const std::string& where) {
  vocab_.build(tokens_);
  const tok::ByteLevel& bl = tok::ByteLevel::get();
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = vocab_.find(bl.encode[b]);
    if (byte_ids_[b] < 0)
      return error("{}: the vocabulary lacks the byte-level token '{}' for byte {:#04x}", where, bl.encode[b], b);
  }
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string& m = merges[r];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) return error("{}: merge {} ('{}') is not two tokens separated by a space", where, r, m);
    const std::string_view mv(m);
    joined.assign(mv.substr(0, sp));
    joined.append(mv.substr(sp + 1));
    const int32_t a = vocab_.find(mv.substr(0, sp)), b = vocab_.find(mv.substr(sp + 1)), ab = vocab_.find(joined);
    if (a < 0 || b < 0 || ab < 0) continue;  // unreachable merge
    merges_.insert(a, b, static_cast<int32_t>(r), ab);
  }
  finish_init();
  return Status::ok();
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path tj = fs::path(path) / "tokenizer.json";
    if (!fs::exists(tj, ec)) return error("{}: no tokenizer.json in this folder", path);
    return from_hf(tj.string());
  }
  if (path.ends_with(".json")) return from_hf(path);
  INFERA_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_gguf(f);
}

}  // namespace infera
