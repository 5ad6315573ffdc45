#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

namespace infera::tok {

class Regex {
 public:
  ~Regex() {
    if (code_) pcre2_code_free(code_);
  }
  static Result<std::unique_ptr<Regex>> compile(const std::string& pattern) {
    auto r = std::make_unique<Regex>();
    int err = 0;
    PCRE2_SIZE off = 0;
    r->code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!r->code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return error("pre-tokenizer regex does not compile at offset {}: {}", off, reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(r->code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    return r;
  }
  // Isolated split of `s`: matches and gaps, in order. Thread-safe (match data per call).
  void split(std::string_view s, std::vector<std::string_view>& out) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    pcre2_match_data* match_ = md.get();
    size_t pos = 0, last = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK,
                                 match_, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match_);
      const size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: step one character
        pos = b + 1;
        while (pos < s.size() && (static_cast<uint8_t>(s[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      if (b > last) out.push_back(s.substr(last, b - last));
      out.push_back(s.substr(b, e - b));
      last = pos = e;
    }
    if (last < s.size()) out.push_back(s.substr(last));
  }

 private:
  pcre2_code* code_ = nullptr;
};

namespace {
const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* kV3Digits = R"(\p{N}{1,3})";
const char* kV3Cjk = "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+";
const char* kV3Rest =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}  // namespace

std::string PreTokenizer::gpt2_pattern() { return kGpt2; }

Result<std::vector<std::string>> PreTokenizer::patterns_for_gguf_pre(const std::string& pre) {
  if (pre == "deepseek-r1-qwen" || pre == "qwen2") return std::vector<std::string>{kQwen2};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return std::vector<std::string>{kLlama3};
  if (pre == "deepseek-v3") return std::vector<std::string>{kV3Digits, kV3Cjk, kV3Rest};
  if (pre == "gpt2" || pre == "default") return std::vector<std::string>{kGpt2};
  return error("unknown pre-tokenizer type: '{}'", pre);
}

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& patterns) {
  PreTokenizer p;
  for (const std::string& pat : patterns) {
    INFERA_ASSIGN_OR_RETURN(std::unique_ptr<Regex> r, Regex::compile(pat));
    p.regexes_.push_back(std::move(r));
  }
  return p;
}

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (regexes_.empty()) {
    if (!text.empty()) out.push_back(text);
    return;
  }
  std::vector<std::string_view> cur{text}, next;
  for (const auto& r : regexes_) {
    next.clear();
    for (std::string_view piece : cur) r->split(piece, next);
    cur.swap(next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace infera::tok
