// Server pieces without a socket: stop strings across token boundaries, Python number printing,
// vLLM's validation messages, the deepseek_r1 reasoning split.
#include <gtest/gtest.h>

#include "base/json_depth.h"
#include "server/api_server.h"
#include "server/api_types.h"
#include "tokenizer/tokenizer.h"
#include "unit/test_util.h"

namespace infera::server {
namespace {

const Tokenizer& qwen() {
  static const std::unique_ptr<Tokenizer> t =
      Tokenizer::from_hf(test::fixture("tokenizers/deepseek-r1-distill-qwen/tokenizer.json")).value();
  return *t;
}

// Streams `text` token by token through a TextAssembler; returns the chunks.
std::vector<std::string> stream(const std::string& text, CompletionParams& p, std::string* stop = nullptr) {
  TextAssembler a(qwen(), p);
  const std::vector<int32_t> ids = qwen().encode(text);
  std::vector<std::string> chunks;
  for (size_t i = 0; i < ids.size() && !a.stopped(); ++i) {
    a.push(ids[i]);
    chunks.push_back(a.take(i + 1 == ids.size()));
  }
  if (stop) *stop = a.stopped() ? a.stop_string() : "";
  return chunks;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}

TEST(TextAssembler, StopStringAcrossTokensIsNeverEmitted) {
  CompletionParams p;
  p.stop = {"lo wor"};  // spans "Hello" | " world"
  std::string matched;
  const std::vector<std::string> chunks = stream("Hello world, and more", p, &matched);
  EXPECT_EQ(join(chunks), "Hel");
  EXPECT_EQ(matched, "lo wor");
  for (const std::string& c : chunks) EXPECT_EQ(c.find("lo"), std::string::npos) << c;
  p.include_stop_str = true;
  EXPECT_EQ(join(stream("Hello world, and more", p)), "Hello wor");
}

TEST(TextAssembler, HoldsBackOnlyWhatCouldStillMatch) {
  CompletionParams p;
  p.stop = {"xyz"};
  const std::vector<std::string> chunks = stream("Hello world again", p);
  EXPECT_EQ(join(chunks), "Hello world again");  // no match: everything comes out by the end
  // Before the end, at most len(stop) - 1 = 2 bytes are held back.
  std::string so_far;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) so_far += chunks[i];
  EXPECT_GE(so_far.size() + 2 + qwen().token_bytes(qwen().encode("Hello world again").back()).size(),
            std::string("Hello world again").size());
}

TEST(TextAssembler, NeverSplitsACharacterAndSkipsSpecialTokens) {
  CompletionParams p;
  const std::vector<std::string> chunks = stream("emoji 😀🎉 done", p);
  for (const std::string& c : chunks) EXPECT_EQ(c.find("\xEF\xBF\xBD"), std::string::npos) << c;
  EXPECT_EQ(join(chunks), "emoji 😀🎉 done");
  TextAssembler a(qwen(), p);
  a.push(151643);  // EOS, special: skipped
  a.push(151649);  // </think>, not special: kept
  EXPECT_EQ(a.take(true), "</think>");
}

TEST(ApiTypes, PythonFloatsAndValidationMessages) {
  EXPECT_EQ(py_float(-1), "-1.0");
  EXPECT_EQ(py_float(2), "2.0");
  EXPECT_EQ(py_float(0.7), "0.7");
  EXPECT_EQ(py_float(1e-5), "1e-05");
  GenerationDefaults d;
  d.temperature = 0.6;
  d.top_p = 0.95;
  auto msg = [&](const char* body, bool chat = true) {
    CompletionParams p;
    auto e = parse_common(OJson::parse(body), d, chat, p);
    return e ? e->message : std::string("ok");
  };
  EXPECT_EQ(msg(R"({"temperature": -1})"), "temperature must be non-negative, got -1.0.");
  EXPECT_EQ(msg(R"({"top_p": 2})"), "top_p must be in (0, 1], got 2.0.");
  EXPECT_EQ(msg(R"({"top_k": -2})"), "top_k must be 0 (disable), or at least 1, got -2.");
  EXPECT_EQ(msg(R"({"presence_penalty": 3})"), "presence_penalty must be in [-2, 2], got 3.0.");
  EXPECT_EQ(msg(R"({"repetition_penalty": 0})"), "repetition_penalty must be greater than zero, got 0.0.");
  EXPECT_EQ(msg(R"({"min_p": 1.5})"), "min_p must be in [0, 1], got 1.5.");
  EXPECT_EQ(msg(R"({"max_tokens": 0})"), "max_tokens must be at least 1, got 0.");
  EXPECT_EQ(msg(R"({"max_tokens": 5, "min_tokens": 6})"), "min_tokens must be less than or equal to max_tokens=5, got 6.");
  EXPECT_EQ(msg(R"({"n": 2, "temperature": 0})"), "n must be 1 when using greedy sampling, got 2.");
  EXPECT_EQ(msg(R"({"stop": ["a", ""]})"), "stop cannot contain an empty string.");
  EXPECT_EQ(msg(R"({"stream_options": {}})"), "Stream options can only be defined when `stream=True`.");
  EXPECT_EQ(msg(R"({"allowed_token_ids": []})"), "allowed_token_ids is not None and empty!");
  // Defaults from generation_config; temperature in (0, 0.01) is clamped to 0.01.
  CompletionParams p;
  ASSERT_FALSE(parse_common(OJson::parse("{}"), d, true, p));
  EXPECT_FLOAT_EQ(p.gen.sampling.temperature, 0.6f);
  EXPECT_FLOAT_EQ(p.gen.sampling.top_p, 0.95f);
  EXPECT_FALSE(p.max_tokens.has_value());  // chat: the rest of the context
  ASSERT_FALSE(parse_common(OJson::parse(R"({"temperature": 0.001})"), d, false, p));
  EXPECT_FLOAT_EQ(p.gen.sampling.temperature, 0.01f);
  EXPECT_EQ(*p.max_tokens, 16);  // completions default
}

// Text whose decoding ends in U+FFFD waits for the token that completes it; if none comes, it is
// never emitted (vLLM's decode stream), while complete text around it flows.
TEST(TextAssembler, IncompleteUtf8TailIsHeldBackAndDroppedAtTheEnd) {
  CompletionParams p;
  const std::vector<int32_t> smile = qwen().encode("😀");  // 4 bytes: byte-level tokens may split it
  std::vector<int32_t> lone;  // a token of one byte that starts a multi-byte sequence
  for (int32_t id = 0; id < 512 && lone.empty(); ++id) {
    const std::string b = qwen().token_bytes(id);
    if (b.size() == 1 && static_cast<uint8_t>(b[0]) >= 0xC2 && static_cast<uint8_t>(b[0]) <= 0xF4) lone.push_back(id);
  }
  ASSERT_FALSE(lone.empty());
  TextAssembler a(qwen(), p);
  for (int32_t t : qwen().encode("ok ")) a.push(t);
  a.push(lone[0]);
  EXPECT_EQ(a.take(false), "ok ");
  EXPECT_EQ(a.take(true), "");  // the cut character never comes out
  TextAssembler b(qwen(), p);
  for (int32_t t : smile) {
    b.push(t);
    const std::string out = b.take(false);
    EXPECT_EQ(out.find("\xEF\xBF\xBD"), std::string::npos) << out;
  }
  EXPECT_EQ(b.take(true), "");  // all of it came out with its last token
}

TEST(TextAssembler, StopHoldBackCountsCharacters) {
  CompletionParams p;
  p.stop = {"élan"};  // 4 characters, 5 bytes: 3 characters are held back while streaming
  TextAssembler a(qwen(), p);
  for (int32_t t : qwen().encode("naïve éééé")) a.push(t);
  EXPECT_EQ(a.take(false), "naïve é");  // 3 characters (6 bytes) held, not 4 bytes
  EXPECT_EQ(a.take(true), "ééé");
  EXPECT_EQ(py_len("naïve café"), 10);
}

TEST(ApiTypes, LaxFieldTypesAsPydantic) {
  GenerationDefaults d;
  auto parse = [&](const char* body, bool chat, CompletionParams& p) { return parse_common(OJson::parse(body), d, chat, p); };
  CompletionParams p;
  ASSERT_FALSE(parse(R"({"max_tokens": "4", "stream": "true", "temperature": " 0.5 ", "ignore_eos": 1, "logprobs": 1})", true, p));
  EXPECT_EQ(*p.max_tokens, 4);
  EXPECT_TRUE(p.stream);
  EXPECT_FLOAT_EQ(p.gen.sampling.temperature, 0.5f);
  EXPECT_TRUE(p.gen.ignore_eos);
  EXPECT_EQ(p.gen.logprobs, 0);  // chat: logprobs 1 is true
  CompletionParams q;
  ASSERT_FALSE(parse(R"({"max_tokens": 4.0, "echo": "no", "logprobs": "2"})", false, q));
  EXPECT_EQ(*q.max_tokens, 4);
  EXPECT_FALSE(q.echo);
  EXPECT_EQ(q.gen.logprobs, 2);
  auto msg = [&](const char* body) {
    CompletionParams r;
    auto e = parse(body, false, r);
    return e ? e->message : std::string("ok");
  };
  EXPECT_EQ(msg(R"({"max_tokens": 4.5})"), "'max_tokens' must be an integer");
  EXPECT_EQ(msg(R"({"stream": "maybe"})"), "'stream' must be a boolean");
  EXPECT_EQ(msg(R"({"stream": 2})"), "'stream' must be a boolean");
  EXPECT_EQ(msg(R"({"temperature": "warm"})"), "'temperature' must be a number");
  EXPECT_EQ(msg(R"({"seed": 9223372036854775808})"), "'seed': Input should be less than or equal to 9223372036854775807");
  EXPECT_EQ(msg(R"({"seed": 9223372036854775807})"), "ok");
  EXPECT_EQ(msg(R"({"max_tokens": null})"), "ok");
  EXPECT_EQ(msg(R"({"max_tokens": "0x10"})"), "'max_tokens' must be an integer");
  EXPECT_EQ(msg(R"({"max_tokens": "1e1"})"), "'max_tokens' must be an integer");
  EXPECT_EQ(msg(R"({"temperature": "0x1p-1"})"), "'temperature' must be a number");
  CompletionParams u;
  ASSERT_FALSE(parse(R"({"max_tokens": " 3_000 ", "temperature": "1_0.5e-1", "seed": "-7"})", false, u));
  EXPECT_EQ(*u.max_tokens, 3000);
  EXPECT_FLOAT_EQ(u.gen.sampling.temperature, 1.05f);
  EXPECT_EQ(u.gen.sampling.seed, static_cast<uint64_t>(-7));
}

TEST(ApiTypes, ReasoningSplit) {
  auto s = split_reasoning("Okay, let me think.\n</think>\n\nThe answer.");
  EXPECT_EQ(*s.reasoning, "Okay, let me think.\n");
  EXPECT_EQ(*s.content, "\n\nThe answer.");
  s = split_reasoning("still thinking");  // max_tokens ran out inside the reasoning
  EXPECT_EQ(*s.reasoning, "still thinking");
  EXPECT_FALSE(s.content.has_value());
  s = split_reasoning("<think>r</think>");
  EXPECT_EQ(*s.reasoning, "r");
  EXPECT_FALSE(s.content.has_value());
  // After the reasoning ends, tags are content (a constraint may have written them there).
  s = split_reasoning("r</think>{\"x\": \"<think>a</think>\"}");
  EXPECT_EQ(*s.reasoning, "r");
  EXPECT_EQ(*s.content, "{\"x\": \"<think>a</think>\"}");
}

TEST(ApiTypes, JsonNestingDepthIgnoresBracketsInStrings) {
  EXPECT_EQ(json_nesting_depth("{}"), 1u);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": "[[[{{"}], "c": "\"]]"})"), 3u);
  EXPECT_EQ(json_nesting_depth("1"), 0u);
  EXPECT_EQ(json_nesting_depth(std::string(100000, '[') + std::string(100000, ']')), 100000u);
}

}  // namespace
}  // namespace infera::server
