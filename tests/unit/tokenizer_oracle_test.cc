// Property test: random texts tokenized by our tokenizer and by the real Hugging Face `tokenizers`
// (Rust, through tests/oracles/hf_tokenizer_oracle.js) must give the same ids and decoded text.
// Needs `npm ci --prefix tests/oracles` (done by .ci/run); skipped otherwise, unless
// INFERA_REQUIRE_ORACLES is set (CI), where a missing oracle fails.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "formats/json_util.h"
#include "tokenizer/tokenizer.h"
#include "unit/test_util.h"

namespace infera {
namespace {

const std::string kOracleDir = std::string(INFERA_SOURCE_DIR) + "/tests/oracles";

bool oracle_available() {
  return std::filesystem::exists(kOracleDir + "/node_modules/@anush008/tokenizers") &&
         std::system("node --version > /dev/null 2>&1") == 0;
}

// Text from pieces that stress every stage: added tokens (whole and cut), contractions, digit
// runs, every kind of whitespace, punctuation runs, CJK, emoji sequences, combining marks (NFC),
// Hangul jamo, RTL and Indic scripts, and invalid-looking but valid code points.
std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "Hello", " world", "The", " quick", "'s", "'LL", "'re", " don't", "I'M", "12345", "3.14159", " 2024",
      "1,000,000", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u3000", "\u00a0", ".", "!!", "?!",
      "...", "---", "#include", "<vector>", "{}", "()", "=>", "//", "/* x */", "\"q\"", "`code`", "中文", "测试一下",
      "日本語", "ひらがな", "カタカナ", "한국어", "\u1100\u1161\u11a8", "😀", "👍🏿", "👨‍👩‍👦", "🇩🇪", "❤️",
      "e\u0301", "A\u030a", "\u212b", "ñ", "Ç", "ÿ", "Ω", "Привет", "مرحبا", "שלום", "नमस्ते", "ภาษาไทย",
      "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<think>", "</think>",
      "<|EOT|>", "<｜Us", "<thi", "<|fim_prefix|>", "<|vision_pad|>", "<tool_call>", "▁", "Ġ", "Ċ", "\u200b",
      "\ufeff", "x", "ABC", "camelCase", "snake_case", "$$", "%", "@user", "https://example.com/a?b=c"};
  std::string s;
  const int n = 1 + static_cast<int>(rng() % 12);
  for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
  return s;
}

TEST(TokenizerOracle, RandomTextsMatchHuggingFaceTokenizers) {
  if (!oracle_available()) {
    if (std::getenv("INFERA_REQUIRE_ORACLES")) FAIL() << "HF tokenizers oracle missing: run npm ci --prefix tests/oracles";
    GTEST_SKIP() << "HF tokenizers oracle not installed (npm ci --prefix tests/oracles)";
  }
  test::TempDir dir;
  std::mt19937 rng(12345);
  struct Case {
    std::string family, text;
    bool add_special;
  };
  std::vector<Case> cases;
  for (const std::string family : {"qwen", "llama"})
    for (int i = 0; i < 1000; ++i) cases.push_back({family, random_text(rng), (i % 3) == 0});
  {
    std::ofstream in(dir.file("in.jsonl"));
    for (const Case& c : cases)
      in << Json{{"tokenizer", test::fixture("tokenizers/deepseek-r1-distill-" + c.family + "/tokenizer.json")},
                 {"text", c.text},
                 {"add_special_tokens", c.add_special}}
                .dump()
         << "\n";
  }
  const std::string cmd = "node " + kOracleDir + "/hf_tokenizer_oracle.js < " + dir.file("in.jsonl") + " > " +
                          dir.file("out.jsonl");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream out(dir.file("out.jsonl"));
  std::map<std::string, std::unique_ptr<Tokenizer>> toks;
  size_t i = 0, mismatches = 0;
  for (std::string line; std::getline(out, line); ++i) {
    ASSERT_LT(i, cases.size());
    const Case& c = cases[i];
    auto& t = toks[c.family];
    if (!t) t = Tokenizer::from_hf(test::fixture("tokenizers/deepseek-r1-distill-" + c.family + "/tokenizer.json")).value();
    const Json want = Json::parse(line);
    const std::vector<int32_t> ids = t->encode(c.text, {c.add_special, SpecialTokens::kAll});
    const bool ok = ids == want["ids"].get<std::vector<int32_t>>() &&
                    t->decode(ids, true) == want["decoded"].get<std::string>();
    EXPECT_TRUE(ok) << c.family << " text: " << Json(c.text).dump() << "\n ours: " << Json(ids).dump()
                    << "\n   hf: " << want["ids"].dump() << "\n decoded ours: " << Json(t->decode(ids, true)).dump()
                    << "\n   hf: " << want["decoded"].dump();
    if (!ok && ++mismatches > 5) break;
  }
  EXPECT_EQ(i, cases.size());
}

}  // namespace
}  // namespace infera
