// The vLLM server arguments of a job's op mapped onto `infera serve` (platform/replica_command.h).
#include <gtest/gtest.h>

#include "platform/replica_command.h"

namespace infera::platform {
namespace {

std::vector<std::string> split(const std::string& s) {
  auto r = op_cmd_list(nlohmann::json(s));
  EXPECT_TRUE(r.ok()) << r.error();
  return *r;
}

TEST(ReplicaCommand, TheTutorialsArgumentsMap) {
  auto r = map_vllm_args(split("--model deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --served-model-name "
                               "DeepSeek-R1-Distill-Qwen-1.5B --port 9000 --max-model-len 8192"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->model, "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B");
  EXPECT_EQ(r->port, 9000);
  EXPECT_EQ(r->serve_args, (std::vector<std::string>{"--served-model-name", "DeepSeek-R1-Distill-Qwen-1.5B",
                                                     "--max-model-len", "8192"}));
}

TEST(ReplicaCommand, BatchingArgumentsReachTheEngine) {
  auto r = map_vllm_args(split("--model m --max-num-seqs 8 --max-num-batched-tokens 1024 --block-size 32 "
                               "--no-enable-prefix-caching --enable-chunked-prefill --kv-cache-dtype auto"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->serve_args, (std::vector<std::string>{"--max-num-seqs", "8", "--max-num-batched-tokens", "1024",
                                                     "--block-size", "32", "--no-enable-prefix-caching"}));
}

TEST(ReplicaCommand, KvCacheTypes) {
  auto f16 = map_vllm_args(split("--model m --kv-cache-dtype f16"));
  ASSERT_TRUE(f16.ok()) << f16.error();
  EXPECT_EQ(f16->serve_args, (std::vector<std::string>{"--kv-cache-dtype", "f16"}));
  auto fp8 = map_vllm_args(split("--model m --kv-cache-dtype=fp8"));
  ASSERT_TRUE(fp8.ok()) << fp8.error();
  EXPECT_EQ(fp8->serve_args, (std::vector<std::string>{"--kv-cache-dtype", "q8_0"}));
  ASSERT_EQ(fp8->notes.size(), 1u);
  EXPECT_NE(fp8->notes[0].find("q8_0"), std::string::npos);
  auto bad = map_vllm_args(split("--model m --kv-cache-dtype int4"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), "unsupported vLLM argument: --kv-cache-dtype int4");
  auto unknown = map_vllm_args(split("--model m --foo"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error(), "unsupported vLLM argument: --foo");
}

}  // namespace
}  // namespace infera::platform
