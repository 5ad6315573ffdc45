// The hub library's pure parts: file choice (model folder, globs, GGUF quantizations and split
// sets), cache paths and links, retry delays, progress lines.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "hub/cache_layout.h"
#include "hub/file_select.h"
#include "hub/hub_http.h"
#include "hub/pull.h"

namespace infera::hub {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kModelRepo = {
    ".gitattributes", "README.md", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "tf_model.h5",
    "flax_model.msgpack", "onnx/model.onnx", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
    "merges.txt", "chat_template.jinja"};

TEST(HubSelect, DefaultIsAModelFolderWithoutOtherWeightFormats) {
  auto r = select_files(kModelRepo, {}, "org/m");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, (std::vector<std::string>{"chat_template.jinja", "config.json", "generation_config.json", "merges.txt",
                                          "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                          "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                                          "tokenizer_config.json"}));
}

TEST(HubSelect, IncludeGlobsMatchAcrossFolders) {
  Selection s;
  s.include = {"*.onnx", "README.*"};
  auto r = select_files(kModelRepo, s, "org/m");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, (std::vector<std::string>{"README.md", "onnx/model.onnx"}));
  s.include = {"*.gguf"};
  auto none = select_files(kModelRepo, s, "org/m");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("no file of org/m matches --include *.gguf"), std::string::npos) << none.error();
}

const std::vector<std::string> kGgufRepo = {
    "README.md", "m-Q4_K_M.gguf", "m-Q4_K.gguf", "m.IQ3_XXS.gguf", "m-q8_0.gguf", "m-F16.gguf",
    "Q5_K_M/m-Q5_K_M-00001-of-00003.gguf", "Q5_K_M/m-Q5_K_M-00002-of-00003.gguf",
    "Q5_K_M/m-Q5_K_M-00003-of-00003.gguf", "BF16/m-BF16-00001-of-00002.gguf"};

TEST(HubSelect, QuantPicksByNameBetweenSeparators) {
  Selection s;
  s.quant = "Q4_K";
  auto r = select_files(kGgufRepo, s, "org/g");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, std::vector<std::string>{"m-Q4_K.gguf"});  // not Q4_K_M
  s.quant = "Q8_0";
  EXPECT_EQ(*select_files(kGgufRepo, s, "org/g"), std::vector<std::string>{"m-q8_0.gguf"});
  s.quant = "iq3_xxs";
  EXPECT_EQ(*select_files(kGgufRepo, s, "org/g"), std::vector<std::string>{"m.IQ3_XXS.gguf"});
}

TEST(HubSelect, QuantTakesEveryPartOfASplitSetAndRefusesAnIncompleteOne) {
  Selection s;
  s.quant = "Q5_K_M";
  auto r = select_files(kGgufRepo, s, "org/g");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(model_entry("/snap", *r), "/snap/Q5_K_M/m-Q5_K_M-00001-of-00003.gguf");
  s.quant = "BF16";
  auto bad = select_files(kGgufRepo, s, "org/g");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("is incomplete in the repository (1 of 2 parts)"), std::string::npos) << bad.error();
}

TEST(HubSelect, GgufRepoWithoutQuantListsTheQuantizations) {
  auto r = select_files(kGgufRepo, {}, "org/g");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("available: BF16, F16, IQ3_XXS, Q4_K, Q4_K_M, Q5_K_M, Q8_0"), std::string::npos) << r.error();
  Selection s;
  s.quant = "Q2_K";
  auto absent = select_files(kGgufRepo, s, "org/g");
  ASSERT_FALSE(absent);
  EXPECT_NE(absent.error().find("has no GGUF file for quantization Q2_K"), std::string::npos);
}

TEST(HubCache, PathsLinksAndRefs) {
  const fs::path dir = fs::temp_directory_path() / ("infera-hub-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  RepoCache c{dir.string(), "org/name"};
  EXPECT_EQ(repo_folder_name("org/name"), "models--org--name");
  EXPECT_EQ(c.lock_path("abc"), (dir / ".locks/models--org--name/abc.lock").string());
  const std::string commit(40, 'a');
  fs::create_directories(dir / "models--org--name/blobs");
  std::ofstream(dir / "models--org--name/blobs/e1") << "x";
  ASSERT_TRUE(link_snapshot_file(c, commit, "a/b/f.txt", "e1"));
  EXPECT_EQ(fs::read_symlink(fs::path(c.snapshot_dir(commit)) / "a/b/f.txt"), "../../../../blobs/e1");
  ASSERT_TRUE(link_snapshot_file(c, commit, "top.txt", "e1"));
  ASSERT_TRUE(link_snapshot_file(c, commit, "dangling", "missing"));
  EXPECT_EQ(fs::read_symlink(fs::path(c.snapshot_dir(commit)) / "top.txt"), "../../blobs/e1");
  EXPECT_EQ(list_snapshot(c, commit), (std::vector<std::string>{"a/b/f.txt", "top.txt"}));
  EXPECT_FALSE(read_ref(c, "main"));
  ASSERT_TRUE(write_ref(c, "main", commit));
  EXPECT_EQ(read_ref(c, "main"), commit);
  EXPECT_EQ(read_ref(c, commit), commit);
  fs::remove_all(dir);
}

TEST(HubHttp, RetryDelaysAndRepoIds) {
  HubConfig cfg;
  EXPECT_EQ(retry_delay(cfg, 1, "").count(), 500);
  EXPECT_EQ(retry_delay(cfg, 3, "").count(), 2000);
  EXPECT_EQ(retry_delay(cfg, 20, "").count(), 30000);
  EXPECT_EQ(retry_delay(cfg, 1, "7").count(), 7000);
  EXPECT_EQ(retry_delay(cfg, 2, "Wed, 21 Oct 2015 07:28:00 GMT").count(), 1000);
  EXPECT_TRUE(retryable_status(429));
  EXPECT_TRUE(retryable_status(503));
  EXPECT_FALSE(retryable_status(404));
  EXPECT_TRUE(is_repo_id("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"));
  EXPECT_FALSE(is_repo_id("/models/x"));
  EXPECT_FALSE(is_repo_id("a/b/c"));
  EXPECT_FALSE(is_repo_id("../x"));
  EXPECT_FALSE(is_repo_id("name"));
  EXPECT_EQ(url_encode("a b/c.json", true), "a%20b/c.json");
  EXPECT_EQ(url_encode("refs/pr/1", false), "refs%2Fpr%2F1");
}

TEST(HubProgress, Lines) {
  EXPECT_EQ(format_bytes(999), "999 B");
  EXPECT_EQ(format_bytes(1'210'000'000), "1.21 GB");
  EXPECT_EQ(format_bytes(212'000'000), "212 MB");
  PullProgress p;
  p.file = "model.safetensors";
  p.file_index = 3;
  p.files = 5;
  p.done = 1'210'000'000;
  p.total = 3'550'000'000;
  p.bytes_per_s = 212e6;
  EXPECT_EQ(format_progress_line(p), "model.safetensors (3/5)  1.21 GB / 3.55 GB (34%)  212 MB/s  ETA 11 s");
}

}  // namespace
}  // namespace infera::hub
