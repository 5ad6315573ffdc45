// Auto tool-call parsers (hermes, llama3_json, deepseek_v3): whole answers split into content and
// calls as vLLM's parsers split them, and streamed answers, cut every way, that add up to the same.
#include <gtest/gtest.h>

#include <random>

#include "server/tool_parsers.h"

namespace infera::server {
namespace {

struct Expect {
  const char* parser;
  std::string text;
  std::optional<std::string> content;                         // the whole answer's content
  std::vector<std::pair<std::string, std::string>> calls;     // name, arguments
};

std::vector<Expect> cases() {
  const std::string b = "<｜tool▁calls▁begin｜>", cb = "<｜tool▁call▁begin｜>", sep = "<｜tool▁sep｜>", ce = "<｜tool▁call▁end｜>",
                    e = "<｜tool▁calls▁end｜>";
  return {
      {"hermes", "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Zürich\",\"days\":2.0}}\n</tool_call>\n"
                 "<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call>",
       "Let me check.\n", {{"get_weather", R"({"city": "Zürich", "days": 2.0})"}, {"noop", "{}"}}},
      {"hermes", "<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": [1, 2]}}", std::nullopt, {{"a", R"({"x": [1, 2]})"}}},  // unclosed: read at the end
      {"hermes", "No tools needed: 2 < 3 and <tool is not a tag.", "No tools needed: 2 < 3 and <tool is not a tag.", {}},
      {"hermes", "Hm <tool_call>{\"name\": \"a\"}</tool_call>", "Hm <tool_call>{\"name\": \"a\"}</tool_call>", {}},  // no arguments: all content
      {"hermes", "<tool_call>not json</tool_call>", "<tool_call>not json</tool_call>", {}},
      {"llama3_json", "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"q\": \"x; y\"}}; {\"name\": \"b\", \"arguments\": {\"n\": 1}}",
       std::nullopt, {{"a", R"({"q": "x; y"})"}, {"b", R"({"n": 1})"}}},
      {"llama3_json", "{\"name\": \"a\", \"parameters\": {}}", std::nullopt, {{"a", "{}"}}},
      {"llama3_json", "The answer is {\"name\": 1}.", "The answer is {\"name\": 1}.", {}},
      {"llama3_json", "{\"value\": 3}", "{\"value\": 3}", {}},
      {"llama3_json", "<|python", "<|python", {}},
      {"deepseek_v3", "Sure." + b + cb + "function" + sep + "get_weather\n```json\n{\"city\": \"Oslo\"}\n```" + ce + "\n" + cb + "function" + sep +
                          "search\n```json\n{\n  \"q\": \"a\"\n}\n```" + ce + e,
       "Sure.", {{"get_weather", R"({"city": "Oslo"})"}, {"search", "{\n  \"q\": \"a\"\n}"}}},
      {"deepseek_v3", "plain answer", "plain answer", {}},
      {"deepseek_v3", b + cb + "function" + sep + "cut\n```json\n{\"a\":", b + cb + "function" + sep + "cut\n```json\n{\"a\":", {}},
  };
}

TEST(ToolParsers, WholeAnswersSplitAsVllm) {
  for (const Expect& x : cases()) {
    auto parser = make_tool_call_parser(x.parser);
    ASSERT_TRUE(parser);
    const ParsedToolCalls p = parser->extract(x.text, true);
    EXPECT_EQ(p.content, x.content) << x.parser << ": " << x.text;
    ASSERT_EQ(p.calls.size(), x.calls.size()) << x.parser << ": " << x.text;
    for (size_t k = 0; k < x.calls.size(); ++k) {
      EXPECT_EQ(p.calls[k]["type"], "function");
      EXPECT_EQ(p.calls[k]["function"]["name"], x.calls[k].first) << x.text;
      EXPECT_EQ(p.calls[k]["function"]["arguments"], x.calls[k].second) << x.text;
      EXPECT_EQ(p.calls[k]["id"].get<std::string>().rfind("chatcmpl-tool-", 0), 0u);
    }
  }
  EXPECT_FALSE(make_tool_call_parser("pythonic"));
}

TEST(ToolParsers, StreamedAnswersAddUpToTheWhole) {
  std::mt19937 g(5);
  for (const Expect& x : cases()) {
    auto parser = make_tool_call_parser(x.parser);
    for (int way = 0; way < 4; ++way) {
      AutoToolCallStream stream(*parser);
      std::string content;
      std::vector<std::pair<std::string, std::string>> calls;
      for (size_t fed = 0; fed < x.text.size();) {
        const size_t n = way == 0 ? 1 : 1 + g() % (way == 1 ? 3 : way == 2 ? 12 : 200);
        const size_t take = std::min(n, x.text.size() - fed);
        const bool last = fed + take == x.text.size();
        AutoToolCallStream::Delta d = stream.update(std::string_view(x.text).substr(fed, take), last);
        fed += take;
        content += d.content;
        for (const OJson& c : d.calls) {
          ASSERT_EQ(c["index"], calls.size()) << x.text;  // whole calls, in order, once each
          calls.emplace_back(c["function"]["name"], c["function"]["arguments"]);
        }
      }
      // Without calls every byte is content; with them, the content before the calls.
      EXPECT_EQ(content, x.calls.empty() ? x.text : x.content.value_or("")) << x.parser << " way " << way << ": " << x.text;
      EXPECT_EQ(calls, x.calls) << x.parser << " way " << way << ": " << x.text;
      EXPECT_EQ(stream.any(), !x.calls.empty());
    }
  }
}

TEST(ToolParsers, ContentIsHeldOnlyWhileItCouldStartTheCalls) {
  auto hermes = make_tool_call_parser("hermes");
  AutoToolCallStream s(*hermes);
  EXPECT_EQ(s.update("a <tool", false).content, "a ");  // "<tool" may begin <tool_call>
  EXPECT_EQ(s.update("s> b", false).content, "<tools> b");
  EXPECT_EQ(s.update(" <", false).content, " ");
  EXPECT_EQ(s.update("", true).content, "<");  // the end: nothing can follow
}

}  // namespace
}  // namespace infera::server
