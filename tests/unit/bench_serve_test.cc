// infera bench-serve's pure helpers: numpy-style percentiles, SSE splitting however the bytes are
// cut, and reading OpenAI streaming chunks (completions, chat, usage, errors, [DONE]).
#include <gtest/gtest.h>

#include "bench_stats.h"

namespace infera::cli::bench {
namespace {

TEST(BenchServePercentile, InterpolatesLinearlyLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], [0, 50, 90, 99, 100]) -> 1, 2.5, 3.7, 3.97, 4
  const std::vector<double> v = {4, 1, 3, 2};  // unsorted on purpose
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_NEAR(percentile(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(percentile(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
  // numpy.percentile([15, 20, 35, 40, 50], 40) -> 29.0
  EXPECT_NEAR(percentile({50, 15, 40, 20, 35}, 40), 29.0, 1e-12);
}

TEST(BenchServePercentile, EdgeCases) {
  EXPECT_EQ(percentile({}, 50), 0);
  EXPECT_EQ(percentile({7}, 0), 7);
  EXPECT_EQ(percentile({7}, 99), 7);
  EXPECT_EQ(percentile({2, 2, 2}, 90), 2);
  EXPECT_EQ(mean({}), 0);
  EXPECT_DOUBLE_EQ(mean({1, 2, 6}), 3);
}

std::vector<std::string> split_all(const std::vector<std::string>& pieces, bool finish = false) {
  SseSplitter s;
  std::vector<std::string> events;
  for (const std::string& p : pieces) s.feed(p, &events);
  if (finish) s.finish(&events);
  return events;
}

TEST(BenchServeSse, DataWithAndWithoutSpace) {
  const auto e = split_all({"data: {\"a\":1}\n\ndata:{\"b\":2}\n\ndata:  x\n\n"});
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], "{\"a\":1}");
  EXPECT_EQ(e[1], "{\"b\":2}");
  EXPECT_EQ(e[2], " x");  // only one leading space belongs to the syntax
}

TEST(BenchServeSse, ChunksSplitAcrossReadsAtEveryByte) {
  const std::string stream = "data: {\"text\":\"hi\"}\r\n\r\n: keep-alive\n\nevent: message\ndata: [DONE]\n\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    const auto e = split_all({stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(e.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(e[0], "{\"text\":\"hi\"}");
    EXPECT_EQ(e[1], "[DONE]");
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(split_all(bytes), (std::vector<std::string>{"{\"text\":\"hi\"}", "[DONE]"}));
}

TEST(BenchServeSse, LineEndingsMultiLineDataAndEndOfStream) {
  EXPECT_EQ(split_all({"data: a\rdata: b\r\r"}), std::vector<std::string>{"a\nb"});
  EXPECT_EQ(split_all({"data: a\n", "data: b\n\n"}), std::vector<std::string>{"a\nb"});
  EXPECT_TRUE(split_all({"data: [DONE]\n"}).empty());  // not ended yet
  EXPECT_EQ(split_all({"data: [DONE]"}, /*finish=*/true), std::vector<std::string>{"[DONE]"});
  EXPECT_TRUE(split_all({": comment\n\nid: 3\n\n"}, true).empty());
}

TEST(BenchServeChunk, Done) {
  EXPECT_TRUE(parse_stream_chunk("[DONE]").done);
  EXPECT_TRUE(parse_stream_chunk(" [DONE]\n").done);
  EXPECT_FALSE(parse_stream_chunk("{\"choices\":[]}").done);
}

TEST(BenchServeChunk, CompletionsAndChatContent) {
  const auto c = parse_stream_chunk(R"({"object":"text_completion","choices":[{"index":0,"text":" the"}],"usage":null})");
  EXPECT_TRUE(c.content);
  EXPECT_FALSE(c.completion_tokens);
  EXPECT_TRUE(c.error.empty());
  EXPECT_TRUE(parse_stream_chunk(R"({"choices":[{"delta":{"content":"Hi"}}]})").content);
  EXPECT_TRUE(parse_stream_chunk(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})").content);
  // The role chunk and a final chunk with only a finish_reason carry no text.
  EXPECT_FALSE(parse_stream_chunk(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})").content);
  EXPECT_FALSE(parse_stream_chunk(R"({"choices":[{"text":"","finish_reason":"length"}]})").content);
  EXPECT_FALSE(parse_stream_chunk(R"({"choices":[{"delta":{"content":null}}]})").content);
}

TEST(BenchServeChunk, Usage) {
  const auto c = parse_stream_chunk(
      R"({"choices":[],"usage":{"prompt_tokens":65,"total_tokens":97,"completion_tokens":32}})");
  EXPECT_FALSE(c.content);
  ASSERT_TRUE(c.prompt_tokens && c.completion_tokens);
  EXPECT_EQ(*c.prompt_tokens, 65);
  EXPECT_EQ(*c.completion_tokens, 32);
}

TEST(BenchServeChunk, Errors) {
  EXPECT_EQ(parse_stream_chunk(R"({"error":{"message":"boom","type":"Internal Server Error","code":500}})").error,
            "boom");
  EXPECT_EQ(parse_stream_chunk(R"({"object":"error","message":"The model `x` does not exist.","code":404})").error,
            "The model `x` does not exist.");
  EXPECT_EQ(parse_stream_chunk(R"({"error":"plain"})").error, "plain");
  EXPECT_FALSE(parse_stream_chunk("not json").error.empty());
  EXPECT_FALSE(parse_stream_chunk("[1,2]").error.empty());
}

}  // namespace
}  // namespace infera::cli::bench
