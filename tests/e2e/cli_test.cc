// The `infera` binary as a user runs it: exit codes, one-line errors, output files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "formats/json_util.h"
#include "unit/test_util.h"

namespace infera {
namespace {

using testing::HasSubstr;
using testing::Not;

std::string prompt_of(const std::string& ref) {
  auto j = read_json_file(test::fixture("reference/" + ref + ".json"));
  std::string s;
  for (int id : (*j)["prompt_ids"]) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* cmd : {"run", "eval", "make-model", "inspect"}) {
    auto r = test::run_infera(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_THAT(r.output, HasSubstr("--")) << cmd;
  }
  EXPECT_NE(test::run_infera("").exit_code, 0);
}

TEST(Cli, EvalWritesAllLogits) {
  test::TempDir d;
  auto r = test::run_infera("eval --model " + test::fixture("models/tiny-qwen2-q8_0.gguf") + " --token-ids \"" +
                            prompt_of("tiny-qwen2-q8_0") + "\" --logits-out " + d.file("l.f32"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::filesystem::file_size(d.file("l.f32")), 32u * 1088u * 4u);
}

TEST(Cli, RunGreedyMatchesReferenceContinuation) {
  auto j = read_json_file(test::fixture("reference/tiny-qwen2-f32.json"));
  std::string want;
  for (int id : (*j)["greedy_ids"]) want += (want.empty() ? "" : " ") + std::to_string(id);
  auto r = test::run_infera("run --model " + test::fixture("models/tiny-qwen2-f32.gguf") + " --token-ids \"" +
                            prompt_of("tiny-qwen2-f32") + "\" -n 32 --temp 0 --ignore-eos 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(want + "\n"));
}

TEST(Cli, RunSamplingIsSeeded) {
  const std::string base = "run --model " + test::fixture("models/tiny-llama-q8_0.gguf") +
                           " --token-ids \"1024 5 6 7\" -n 12 --temp 0.8 --top-p 0.9 --ignore-eos --seed ";
  auto a = test::run_infera(base + "1 2>/dev/null"), b = test::run_infera(base + "1 2>/dev/null"),
       c = test::run_infera(base + "2 2>/dev/null");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output, c.output);
}

TEST(Cli, UserErrorsAreOneLine) {
  struct C { std::string args, expect; };
  const std::string m = test::fixture("models/tiny-qwen2-q4_0.gguf");
  for (const C& c : {C{"eval --model /nonexistent.gguf --token-ids 1 --logits-out /dev/null", "such file"},
                     C{"eval --model " + m + " --token-ids \"1 x 3\" --logits-out /dev/null", "'x' is not a token id"},
                     C{"eval --model " + m + " --token-ids \"1 99999\" --logits-out /dev/null", "outside the vocabulary"},
                     C{"run --model " + m + " --prompt hello --token-ids 1", "exactly one of --prompt"},
                     C{"inspect /nonexistent.gguf", "such file"}}) {
    auto r = test::run_infera(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.expect)) << c.args;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
  }
}

TEST(Cli, CorruptModelIsOneLineError) {
  test::TempDir d;
  std::vector<uint8_t> b = test::read_bytes(test::fixture("models/tiny-qwen2-q4_k.gguf"));
  // Truncated in the tensor data, in the tensor infos, and with a broken magic.
  for (size_t cut : {b.size() - 1000, size_t{300}, b.size() / 2}) {
    test::write_bytes(d.file("t.gguf"), std::vector<uint8_t>(b.begin(), b.begin() + static_cast<long>(cut)));
    auto r = test::run_infera("eval --model " + d.file("t.gguf") + " --token-ids 1 --logits-out " + d.file("l"));
    EXPECT_EQ(r.exit_code, 1) << cut;
    EXPECT_THAT(r.output, HasSubstr(d.file("t.gguf"))) << cut;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
  }
  std::vector<uint8_t> bad = b;
  bad[0] = 'X';
  test::write_bytes(d.file("m.gguf"), bad);
  auto r = test::run_infera("inspect " + d.file("m.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("bad magic"));
}

TEST(Cli, ShapeMismatchNamesTensorAndShapes) {
  test::TempDir d;
  // A config.json that disagrees with the safetensors shapes.
  std::filesystem::copy(test::fixture("models/tiny-qwen2-hf"), d.file("hf"));
  auto cfg = read_json_file(d.file("hf/config.json"));
  (*cfg)["intermediate_size"] = 640;
  std::ofstream(d.file("hf/config.json")) << cfg->dump();
  auto r = test::run_infera("eval --model " + d.file("hf") + " --token-ids 1 --logits-out " + d.file("l"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("blk.0.ffn_gate.weight"));
  EXPECT_THAT(r.output, HasSubstr("[256, 512]"));
  EXPECT_THAT(r.output, HasSubstr("[256, 640]"));
}

TEST(Cli, MakeModelThenInspectAndRun) {
  test::TempDir d;
  auto r = test::run_infera("make-model --arch llama --preset tiny --dtype q4_k_m --seed 3 --out " + d.file("m.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_infera("inspect " + d.file("m.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rope_freqs.weight"));
  EXPECT_THAT(r.output, HasSubstr("Q6_K"));
  r = test::run_infera("run --model " + d.file("m.gguf") + " --token-ids \"259 40 41\" -n 5 --temp 0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = test::run_infera("make-model --arch qwen2 --preset tiny --format hf --dtype bf16 --out " + d.file("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_infera("inspect " + d.file("hf"));
  EXPECT_THAT(r.output, HasSubstr("model.layers.1.mlp.down_proj.weight"));
}

TEST(Cli, TokenizeJsonlAndRunWithTextPrompt) {
  test::TempDir d;
  std::ofstream(d.file("in.jsonl")) << "{\"text\": \"Hello, world!\"}\n{\"text\": \"<｜User｜>Hi<｜Assistant｜>\"}\n";
  const std::string tok = test::fixture("tokenizers/deepseek-r1-distill-qwen");
  auto r = test::run_infera("tokenize --model " + tok + " --special --input-jsonl " + d.file("in.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\":[9707,11,1879,0]}\n{\"ids\":[151644,13048,151645]}\n");
  r = test::run_infera("tokenize --model " + tok + " --decode \"9707 11 1879 0\"");
  EXPECT_EQ(r.output, "Hello, world!\n");
  // A GGUF file carries its tokenizer: text in, text out.
  r = test::run_infera("run --model " + test::fixture("models/tiny-qwen2-q8_0.gguf") + " --prompt \"Hello\" -n 4 --temp 0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("prompt 4 tokens"));  // BOS + 3 ids in the tiny vocabulary
}

// The tutorial's conversation, rendered with the R1 template from tokenizer_config.json and from
// a GGUF file, then tokenized as vLLM's chat endpoint does: exact text, 21 ids, one BOS.
TEST(Cli, ChatTemplateTutorialPrompt) {
  test::TempDir d;
  std::ofstream(d.file("m.json")) << R"([{"role":"system","content":"You are a helpful assistant."},)"
                                  << R"({"role":"user","content":"Give me a short fun fact about the roman empire"}])";
  const std::string want =
      "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Give me a short fun fact about the roman "
      "empire<｜Assistant｜><think>\n";
  const std::string tok = test::fixture("tokenizers/deepseek-r1-distill-qwen");
  auto r = test::run_infera("chat-template --model " + tok + " --messages-json " + d.file("m.json") +
                            " --add-generation-prompt 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, want);  // exactly: no trailing newline added
  r = test::run_infera("chat-template --model " + test::fixture("models/tiny-qwen2-q4_0.gguf") + " --messages-json " +
                       d.file("m.json") + " --add-generation-prompt 2>/dev/null");
  EXPECT_EQ(r.output, want);  // the same template, read from GGUF tokenizer.chat_template
  std::ofstream(d.file("p.txt")) << want;
  std::ofstream(d.file("p.jsonl")) << Json{{"text", want}}.dump() << "\n";
  r = test::run_infera("tokenize --model " + tok + " --special --input-jsonl " + d.file("p.jsonl"));
  EXPECT_EQ(r.output,
            "{\"ids\":[151646,2610,525,264,10950,17847,13,151644,35127,752,264,2805,2464,2097,911,279,47776,31347,"
            "151645,151648,198]}\n");
}

// A tokenizer without a chat template but with the R1 turn tokens gets the built-in R1 template.
TEST(Cli, ChatTemplateBuiltInOnlyWhenTheModelHasNone) {
  test::TempDir d;
  std::filesystem::create_directories(d.file("tok"));
  std::filesystem::copy(test::fixture("models/tiny-qwen2-hf/tokenizer.json"), d.file("tok/tokenizer.json"));
  std::ofstream(d.file("m.json")) << R"([{"role":"user","content":"What is 2+2?"}])";
  auto r = test::run_infera("chat-template --model " + d.file("tok") + " --messages-json " + d.file("m.json") +
                            " --add-generation-prompt 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n");
  // A template in the model's files always wins.
  std::ofstream(d.file("tok/tokenizer_config.json")) << R"({"chat_template": "{{ messages[0]['content'] }}!"})";
  r = test::run_infera("chat-template --model " + d.file("tok") + " --messages-json " + d.file("m.json") + " 2>/dev/null");
  EXPECT_EQ(r.output, "What is 2+2?!");
}

TEST(Cli, ChatTemplateErrorsAreOneLine) {
  test::TempDir d;
  std::ofstream(d.file("m.json")) << R"([{"role":"user","content":"hi"}])";
  std::ofstream(d.file("bad.jinja")) << "line one\n{{ messages | no_such_filter }}";
  auto r = test::run_infera("chat-template --model " + test::fixture("tokenizers/deepseek-r1-distill-qwen") +
                            " --messages-json " + d.file("m.json") + " --chat-template " + d.file("bad.jinja"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("line 2"));
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
}

}  // namespace
}  // namespace infera
