// The tokenizer against Hugging Face `tokenizers` output (tests/fixtures/tokenizers/cases-*.jsonl),
// loaded from tokenizer.json and from GGUF metadata carrying the same vocabulary.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/gguf_writer.h"
#include "formats/json_util.h"
#include "formats/tokenizer_json.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "unit/test_util.h"

namespace infera {
namespace {

std::vector<Json> read_cases(const std::string& name) {
  std::ifstream f(test::fixture("tokenizers/" + name));
  std::vector<Json> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(Json::parse(line));
  return out;
}

const Tokenizer& hf_tokenizer(const std::string& family) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[family];
  if (!t) {
    auto r = Tokenizer::from_hf(test::fixture("tokenizers/deepseek-r1-distill-" + family + "/tokenizer.json"));
    EXPECT_TRUE(r.ok()) << r.error();
    t = std::move(*r);
  }
  return *t;
}

// A GGUF file with only tokenizer metadata, written from the same tokenizer.json, as converters do.
std::unique_ptr<Tokenizer> gguf_tokenizer(const std::string& family, const std::string& pre, test::TempDir& dir) {
  auto d = read_hf_tokenizer(test::fixture("tokenizers/deepseek-r1-distill-" + family + "/tokenizer.json"));
  EXPECT_TRUE(d.ok()) << d.error();
  GgufWriter w;
  std::vector<GgufValue> toks, types, merges;
  for (size_t i = 0; i < d->tokens.size(); ++i) {
    toks.push_back(GgufValue::of_string(d->tokens[i]));
    types.push_back(GgufValue::of_i32(static_cast<int32_t>(d->types[i])));  // converter's CONTROL/USER_DEFINED rule
  }
  for (const std::string& m : d->merges) merges.push_back(GgufValue::of_string(m));
  w.add_kv("general.architecture", GgufValue::of_string(family == "qwen" ? "qwen2" : "llama"));
  w.add_kv("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.add_kv("tokenizer.ggml.pre", GgufValue::of_string(pre));
  w.add_kv("tokenizer.ggml.tokens", GgufValue::of_array(GgufType::STRING, std::move(toks)));
  w.add_kv("tokenizer.ggml.token_type", GgufValue::of_array(GgufType::I32, std::move(types)));
  w.add_kv("tokenizer.ggml.merges", GgufValue::of_array(GgufType::STRING, std::move(merges)));
  w.add_kv("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<uint32_t>(d->bos_id)));
  w.add_kv("tokenizer.ggml.eos_token_id", GgufValue::of_u32(static_cast<uint32_t>(d->eos_id)));
  w.add_kv("tokenizer.ggml.add_bos_token", GgufValue::of_bool(true));
  const std::string path = dir.file(family + ".gguf");
  EXPECT_TRUE(w.write(path, [](size_t, std::span<uint8_t>) { return Status::ok(); }).is_ok());
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.error();
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.ok()) << t.error();
  return std::move(*t);
}

std::vector<int32_t> ids_of(const Json& j) { return j.get<std::vector<int32_t>>(); }

void check_family(const std::string& family, const std::string& pre) {
  const Tokenizer& hf = hf_tokenizer(family);
  test::TempDir dir;
  const std::unique_ptr<Tokenizer> gg = gguf_tokenizer(family, pre, dir);
  int n = 0;
  for (const Json& c : read_cases("cases-" + family + ".jsonl")) {
    const std::string text = c["text"];
    const std::string tag = c["category"].get<std::string>() + ": " + text.substr(0, 60);
    EXPECT_EQ(hf.encode(text, {false, SpecialTokens::kNone}), ids_of(c["ids"])) << tag;
    EXPECT_EQ(hf.encode(text, {false, SpecialTokens::kAll}), ids_of(c["ids_with_specials"])) << tag;
    EXPECT_EQ(hf.encode(text, {false, SpecialTokens::kNonSpecialOnly}), ids_of(c["ids_split_special"])) << tag;
    EXPECT_EQ(hf.decode(ids_of(c["ids_with_specials"]), true), c["decoded_skip_special_tokens"].get<std::string>()) << tag;
    // Lossless without specials, up to the NFC normalization the Qwen tokenizer applies.
    EXPECT_EQ(hf.decode(ids_of(c["ids"]), false), family == "qwen" ? tok::nfc(text) : text) << tag;
    EXPECT_EQ(gg->encode(text, {false, SpecialTokens::kNone}), ids_of(c["ids"])) << "gguf " << tag;
    EXPECT_EQ(gg->encode(text, {false, SpecialTokens::kAll}), ids_of(c["ids_with_specials"])) << "gguf " << tag;
    // GGUF has no HF "special" flag; the loader's CONTROL rule must reproduce HF's skip list.
    EXPECT_EQ(gg->decode(ids_of(c["ids_with_specials"]), true), c["decoded_skip_special_tokens"].get<std::string>())
        << "gguf " << tag;
    ++n;
  }
  EXPECT_GT(n, 390);
}

TEST(Tokenizer, QwenCasesMatchHuggingFace) { check_family("qwen", "deepseek-r1-qwen"); }
TEST(Tokenizer, LlamaCasesMatchHuggingFace) { check_family("llama", "llama-bpe"); }

// Merges written as ["a", "b"] pairs (newer tokenizers releases; the fixture HF twin) load to the
// same tokenizer as "a b" strings (older releases); and a converter-made GGUF (the fixture models' reduced vocabulary) tokenizes
// like its tokenizer.json.
TEST(Tokenizer, MergePairsAndFixtureGgufAgreeWithTokenizerJson) {
  test::TempDir dir;
  auto j = read_json_file(test::fixture("models/tiny-qwen2-hf/tokenizer.json"));
  ASSERT_TRUE(j.ok());
  Json converted = Json::array();  // pairs <-> strings, whichever the fixture has
  for (const Json& m : (*j)["model"]["merges"]) {
    if (m.is_array()) {
      converted.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      const std::string s = m.get<std::string>();
      converted.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
    }
  }
  (*j)["model"]["merges"] = converted;
  std::ofstream(dir.file("tokenizer.json")) << j->dump();
  auto strings = Tokenizer::load(test::fixture("models/tiny-qwen2-hf"));
  auto paired = Tokenizer::load(dir.file("tokenizer.json"));
  auto gguf = Tokenizer::load(test::fixture("models/tiny-qwen2-q8_0.gguf"));
  ASSERT_TRUE(strings.ok()) << strings.error();
  ASSERT_TRUE(paired.ok()) << paired.error();
  ASSERT_TRUE(gguf.ok()) << gguf.error();
  int multi_token = 0;
  for (const Json& c : read_cases("cases-qwen.jsonl")) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = (*strings)->encode(text, {true, SpecialTokens::kAll});
    EXPECT_EQ((*paired)->encode(text, {true, SpecialTokens::kAll}), want) << text;
    EXPECT_EQ((*gguf)->encode(text, {true, SpecialTokens::kAll}), want) << text;
    EXPECT_EQ((*gguf)->decode(want, true), (*strings)->decode(want, true)) << text;
    multi_token += want.size() < text.size();  // merges actually fired
  }
  EXPECT_GT(multi_token, 200);
}

TEST(Tokenizer, TutorialPromptIds) {
  const Tokenizer& t = hf_tokenizer("qwen");
  const std::string prompt =
      "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Give me a short fun fact about the roman "
      "empire<｜Assistant｜><think>\n";
  const std::vector<int32_t> want = {151646, 2610, 525, 264, 10950, 17847, 13, 151644, 35127, 752, 264,
                                     2805,   2464, 2097, 911, 279, 47776, 31347, 151645, 151648, 198};
  EXPECT_EQ(t.encode(prompt), want);  // the template writes BOS as text: no second BOS
  const std::vector<int32_t> with_bos = t.encode("Hello, world!", {true, SpecialTokens::kAll});
  EXPECT_EQ(with_bos, (std::vector<int32_t>{151646, 9707, 11, 1879, 0}));
  EXPECT_EQ(t.bos_id(), 151646);
  EXPECT_EQ(t.eos_id(), 151643);
}

TEST(Tokenizer, StreamingDecodeNeverSplitsCharacters) {
  for (const std::string family : {"qwen", "llama"}) {
    const Tokenizer& t = hf_tokenizer(family);
    for (const Json& c : read_cases("cases-" + family + ".jsonl")) {
      const std::vector<int32_t> ids = ids_of(c["ids_with_specials"]);
      IncrementalDetokenizer d(t, true);
      std::string all;
      for (int32_t id : ids) {
        const std::string chunk = d.push(id);
        for (size_t i = 0; i < chunk.size(); ++i) ASSERT_NE(chunk.substr(i, 3), "\xEF\xBF\xBD") << c["text"];
        all += chunk;
      }
      all += d.finish();
      EXPECT_EQ(all, t.decode(ids, true)) << c["text"];
    }
  }
}

TEST(Tokenizer, LongRepeatedInputDoesNotStall) {
  const Tokenizer& t = hf_tokenizer("qwen");
  for (const std::string unit : {"a", " ", "1", "\xF0\x9F\x98\x80", "ab "}) {
    std::string text;
    while (text.size() < 100000) text += unit;
    const std::vector<int32_t> ids = t.encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t.decode(ids, false), text);
  }
}

TEST(Tokenizer, InvalidUtf8IsReplacedNotFatal) {
  const Tokenizer& t = hf_tokenizer("qwen");
  const std::vector<int32_t> ids = t.encode(std::string("ok\xFF\xC3", 4));
  EXPECT_EQ(t.decode(ids, false), "ok\xEF\xBF\xBD\xEF\xBF\xBD");
}

std::vector<std::string> pieces(const std::string& pre, const std::string& text) {
  auto patterns = tok::PreTokenizer::patterns_for_gguf_pre(pre);
  EXPECT_TRUE(patterns.ok()) << patterns.error();
  auto p = tok::PreTokenizer::create(*patterns);
  EXPECT_TRUE(p.ok()) << p.error();
  std::vector<std::string_view> out;
  p->split(text, out);
  return {out.begin(), out.end()};
}

// Pre-tokenizers without a fixture vocabulary here, checked piece by piece (HF Split "Isolated":
// matches and the gaps between them are pieces; each regex splits the previous pieces).
TEST(Tokenizer, PreTokenizerSplits) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("deepseek-v3", "Hi 12345中文!"), (V{"Hi", " ", "123", "45", "中文", "!"}));
  EXPECT_EQ(pieces("gpt2", "Hello world's 123  x"), (V{"Hello", " world", "'s", " 123", " ", " x"}));
  EXPECT_EQ(pieces("llama-bpe", "abc 12345"), (V{"abc", " ", "123", "45"}));
  EXPECT_EQ(pieces("deepseek-r1-qwen", "abc 12345"), (V{"abc", " ", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(pieces("qwen2", "I'LL go\n\n  now"), (V{"I", "'LL", " go", "\n\n", " ", " now"}));
}

TEST(Tokenizer, UnknownGgufPreTokenizerIsAnError) {
  test::TempDir dir;
  GgufWriter w;
  w.add_kv("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.add_kv("tokenizer.ggml.pre", GgufValue::of_string("mystery"));
  w.add_kv("tokenizer.ggml.tokens", GgufValue::of_array(GgufType::STRING, {GgufValue::of_string("a")}));
  ASSERT_TRUE(w.write(dir.file("t.gguf"), [](size_t, std::span<uint8_t>) { return Status::ok(); }).is_ok());
  auto f = GgufFile::open(dir.file("t.gguf"));
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().find("unknown pre-tokenizer type: 'mystery'"), std::string::npos) << t.error();
}

}  // namespace
}  // namespace infera
