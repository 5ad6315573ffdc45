// Tests of the safetensors reader and writer (src/formats/safetensors.cc): round trips, the real
// fixture, hand-built hostile headers (each must fail with a message naming the file and the
// tensor), every truncation of a small file, and sharded models with model.safetensors.index.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "unit/test_util.h"

namespace infera {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::HasSubstr;

uint8_t pattern(size_t i, size_t j) { return static_cast<uint8_t>(i * 53 + j * 7 + 1); }

Status fill_pattern(size_t i, std::span<uint8_t> out) {
  for (size_t j = 0; j < out.size(); ++j) out[j] = pattern(i, j);
  return Status::ok();
}

// Bytes of a safetensors file: u64 header length, the header text, then `data`.
std::vector<uint8_t> st_bytes(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b(8);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// Header JSON with one tensor "w" whose entry is `entry`.
std::string one(const std::string& entry) { return R"({"__metadata__":{"format":"pt"},"w":)" + entry + "}"; }

// A whole file, read fast (a byte-wise istreambuf_iterator is slow under ASan).
std::vector<uint8_t> slurp(const std::string& path) {
  std::vector<uint8_t> b(fs::file_size(path));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  if (f) {
    EXPECT_EQ(std::fread(b.data(), 1, b.size(), f), b.size()) << path;
    std::fclose(f);
  }
  return b;
}

void write_text(const std::string& path, const std::string& text) {
  test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// Opens `path`, expects failure, and returns the message, which must name `must_name` (the file).
std::string open_error(const std::string& path, const std::string& must_name) {
  auto m = SafetensorsModel::open(path);
  EXPECT_FALSE(m.ok()) << "opened " << path;
  if (m.ok()) return "";
  EXPECT_THAT(m.error(), HasSubstr(must_name));
  EXPECT_EQ(m.error().find('\n'), std::string::npos) << "error is more than one line: " << m.error();
  return m.error();
}

class SafetensorsHostile : public ::testing::Test {
 protected:
  std::string fail(const std::vector<uint8_t>& bytes) {
    test::write_bytes(path_, bytes);
    return open_error(path_, path_);
  }
  std::string fail(const std::string& header, size_t data_bytes = 16) {
    return fail(st_bytes(header, std::vector<uint8_t>(data_bytes, 0)));
  }
  TempDir dir_;
  std::string path_ = dir_.file("hostile.safetensors");
};

// ---- Round trip ------------------------------------------------------------------------------

TEST(SafetensorsRoundTrip, WriteThenOpen) {
  TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  // Deliberately not in name order: the writer sorts, the fill callback keeps the given indices.
  const std::vector<SafetensorsSpec> specs = {
      {"model.norm.weight", "F32", {5}},
      {"lm_head.weight", "BF16", {3, 4}},
      {"a.bias", "F16", {7}},
      {"model.layers.0.mlp.up_proj.weight", "F32", {2, 3}},
      {"scalar", "F16", {}},
  };
  ASSERT_TRUE(write_safetensors(path, specs, fill_pattern));

  auto m = SafetensorsModel::open(path);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(m->file_paths(), std::vector<std::string>{path});
  ASSERT_EQ(m->tensors().size(), specs.size());
  struct Want { DType type; int n_dims; std::array<int64_t, 4> ne; uint64_t nbytes; };
  const Want want[] = {
      {DType::F32, 1, {5, 1, 1, 1}, 20},
      {DType::BF16, 2, {4, 3, 1, 1}, 24},
      {DType::F16, 1, {7, 1, 1, 1}, 14},
      {DType::F32, 2, {3, 2, 1, 1}, 24},
      {DType::F16, 1, {1, 1, 1, 1}, 2},
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const SafetensorsTensor* t = m->find(specs[i].name);
    ASSERT_NE(t, nullptr) << specs[i].name;
    EXPECT_EQ(t->dtype, specs[i].dtype) << t->name;
    EXPECT_EQ(t->shape, specs[i].shape) << t->name;
    EXPECT_EQ(t->file_index, 0);
    EXPECT_EQ(t->view.type, want[i].type) << t->name;
    EXPECT_EQ(t->view.n_dims, want[i].n_dims) << t->name;
    EXPECT_EQ(t->view.ne, want[i].ne) << t->name;  // reversed shape
    EXPECT_EQ(t->view.nbytes, want[i].nbytes) << t->name;
    ASSERT_TRUE(t->view.valid()) << t->name;
    size_t bad = 0;
    for (size_t j = 0; j < t->view.nbytes; ++j) bad += t->view.data[j] != pattern(i, j);
    EXPECT_EQ(bad, 0u) << t->name << ": bytes differ from what was written";
  }
  EXPECT_EQ(m->find("missing"), nullptr);

  // Tensors are sorted by name, both in the header text and in the data section.
  const std::vector<uint8_t> file = slurp(path);
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "data section not 8-byte aligned";
  const std::string header(file.begin() + 8, file.begin() + 8 + static_cast<ptrdiff_t>(n));
  EXPECT_THAT(header, HasSubstr(R"("__metadata__":{"format":"pt"})"));
  const std::vector<std::string> sorted = {"a.bias", "lm_head.weight", "model.layers.0.mlp.up_proj.weight",
                                           "model.norm.weight", "scalar"};
  for (size_t i = 0; i + 1 < sorted.size(); ++i) {
    EXPECT_LT(header.find('"' + sorted[i] + '"'), header.find('"' + sorted[i + 1] + '"')) << sorted[i];
    EXPECT_LT(m->find(sorted[i])->view.data, m->find(sorted[i + 1])->view.data) << sorted[i];
  }
  EXPECT_EQ(m->tensors()[0].name, "a.bias");
  EXPECT_EQ(std::memcmp(m->find("a.bias")->view.data, file.data() + 8 + n, 14), 0);  // first in the data
  EXPECT_EQ(file.size(), 8 + n + 20 + 24 + 14 + 24 + 2);
}

TEST(SafetensorsRoundTrip, WriterRejectsUnusableDtype) {
  TempDir dir;
  for (const char* dt : {"I8", "F64", "Q4_0", ""}) {
    Status s = write_safetensors(dir.file("x.safetensors"), {{"w", dt, {4}}}, fill_pattern);
    ASSERT_FALSE(s) << dt;
    EXPECT_THAT(s.message(), HasSubstr(fmt::format("cannot write dtype '{}'", dt)));
  }
}

// ---- Real fixture ----------------------------------------------------------------------------

TEST(SafetensorsFixture, TinyQwen2Hf) {
  const std::string dir = test::fixture("models/tiny-qwen2-hf");
  for (const std::string& path : {dir, dir + "/model.safetensors"}) {
    auto m = SafetensorsModel::open(path);
    ASSERT_TRUE(m.ok()) << m.error();
    EXPECT_EQ(m->file_paths().size(), 1u);
    ASSERT_EQ(m->tensors().size(), 27u);
    for (const SafetensorsTensor& t : m->tensors()) {
      EXPECT_EQ(t.dtype, "BF16") << t.name;
      EXPECT_EQ(t.view.type, DType::BF16) << t.name;
      EXPECT_TRUE(t.view.valid()) << t.name;
    }
    const SafetensorsTensor* emb = m->find("model.embed_tokens.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->shape, (std::vector<int64_t>{1088, 256}));
    EXPECT_EQ(emb->view.ne, (std::array<int64_t, 4>{256, 1088, 1, 1}));
    EXPECT_EQ(emb->view.n_dims, 2);
    EXPECT_EQ(emb->view.nbytes, 1088u * 256u * 2u);
    const SafetensorsTensor* norm = m->find("model.layers.0.input_layernorm.weight");
    ASSERT_NE(norm, nullptr);
    EXPECT_EQ(norm->shape, std::vector<int64_t>{256});
    EXPECT_EQ(norm->view.n_dims, 1);
    // lm_head.weight is first in the data section; the view points at the file's bytes.
    const std::vector<uint8_t> file = slurp(dir + "/model.safetensors");
    const SafetensorsTensor* head = m->find("lm_head.weight");
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(std::memcmp(head->view.data, file.data() + 8 + 2848, head->view.nbytes), 0);
    EXPECT_EQ(std::memcmp(emb->view.data, file.data() + 8 + 2848 + 557056, emb->view.nbytes), 0);
  }
}

// ---- Hostile files ---------------------------------------------------------------------------

TEST_F(SafetensorsHostile, Baseline) {
  test::write_bytes(path_, st_bytes(one(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})"),
                                    std::vector<uint8_t>(16, 3)));
  auto m = SafetensorsModel::open(path_);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->find("w")->view.nbytes, 16u);
}

TEST_F(SafetensorsHostile, FileAndHeaderFraming) {
  EXPECT_THAT(open_error(dir_.file("absent.safetensors"), dir_.file("absent.safetensors")), HasSubstr("cannot open"));
  for (size_t n = 0; n < 8; ++n)
    EXPECT_THAT(fail(std::vector<uint8_t>(n, 0)), HasSubstr(fmt::format("file is {} bytes, too short", n)));
  std::vector<uint8_t> b = st_bytes("{}", {});
  b[0] = 3;  // header length 3 > 2 bytes left
  EXPECT_THAT(fail(b), HasSubstr("header length 3 exceeds the file size 10"));
  b[7] = 0x80;  // 2^63 + 3
  EXPECT_THAT(fail(b), HasSubstr("header length 9223372036854775811 exceeds"));
  b = std::vector<uint8_t>(8, 0xFF);
  EXPECT_THAT(fail(b), HasSubstr("header length 18446744073709551615 exceeds"));
  EXPECT_THAT(fail(st_bytes("", {})), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(fail("{not json"), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(fail(R"({"w":{"dtype":"F32"})"), HasSubstr("header is not a JSON object"));  // unbalanced
  EXPECT_THAT(fail(R"([{"dtype":"F32","shape":[4],"data_offsets":[0,16]}])"), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(fail("\"w\""), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(fail(std::string(100000, '[')), HasSubstr("header is not a JSON object"));  // deep nesting
  // An empty object (or metadata only) is a valid file with no tensors.
  test::write_bytes(path_, st_bytes(R"({"__metadata__":{}}        )", {}));
  auto m = SafetensorsModel::open(path_);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_TRUE(m->tensors().empty());
}

TEST_F(SafetensorsHostile, EntryFields) {
  EXPECT_THAT(fail(one("[1,2]")), HasSubstr("tensor 'w': entry is not an object"));
  EXPECT_THAT(fail(one(R"({"shape":[4],"data_offsets":[0,16]})")), HasSubstr("tensor 'w': missing string 'dtype'"));
  EXPECT_THAT(fail(one(R"({"dtype":7,"shape":[4],"data_offsets":[0,16]})")), HasSubstr("tensor 'w': missing string 'dtype'"));
  EXPECT_THAT(fail(one(R"({"dtype":"F32","data_offsets":[0,16]})")), HasSubstr("tensor 'w': missing array 'shape'"));
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})")), HasSubstr("tensor 'w': missing array 'shape'"));
  for (const char* off : {"", R"(,"data_offsets":[0])", R"(,"data_offsets":[0,16,16])", R"(,"data_offsets":[-1,16])",
                          R"(,"data_offsets":[0,1.5e1])", R"(,"data_offsets":"0-16")", R"(,"data_offsets":[0,"16"])"}) {
    EXPECT_THAT(fail(one(std::string(R"({"dtype":"F32","shape":[4])") + off + "}")),
                HasSubstr("tensor 'w': 'data_offsets' must be two non-negative integers"))
        << off;
  }
  EXPECT_THAT(fail(one(R"({"dtype":"Q9","shape":[4],"data_offsets":[0,16]})")), HasSubstr("tensor 'w': unknown dtype 'Q9'"));
  EXPECT_THAT(fail(one(R"({"dtype":"bf16","shape":[8],"data_offsets":[0,16]})")), HasSubstr("unknown dtype 'bf16'"));
  for (const char* shape : {"[-1]", "[2.5]", "[4,-4]", "[\"4\"]", "[null]", "[1e3]"}) {
    EXPECT_THAT(fail(one(std::string(R"({"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,16]})")),
                HasSubstr("tensor 'w': shape entries must be non-negative integers"))
        << shape;
  }
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":[1,1,1,1,4],"data_offsets":[0,16]})")),
              HasSubstr("tensor 'w': 5 dimensions (at most 4 supported)"));
  for (const char* shape : {"[18446744073709551615]", "[4294967296,4294967296]", "[1125899906842625]"}) {
    EXPECT_THAT(fail(one(std::string(R"({"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,16]})")),
                HasSubstr("tensor 'w': impossible shape"))
        << shape;
  }
}

TEST_F(SafetensorsHostile, DataOffsets) {
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,100]})")),
              HasSubstr("tensor 'w': data_offsets [0, 100] outside the 16 data bytes"));
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":[4],"data_offsets":[16,0]})")),
              HasSubstr("tensor 'w': data_offsets [16, 0] outside"));
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":[4],"data_offsets":[18446744073709551615,18446744073709551615]})")),
              HasSubstr("tensor 'w': data_offsets [18446744073709551615, 18446744073709551615] outside"));
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})")),
              HasSubstr("tensor 'w': 8 bytes stored but shape [3] of F32 needs 12"));
  EXPECT_THAT(fail(one(R"({"dtype":"BF16","shape":[2,4],"data_offsets":[0,8]})")),
              HasSubstr("tensor 'w': 8 bytes stored but shape [2,4] of BF16 needs 16"));
  EXPECT_THAT(fail(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), 15),
              HasSubstr("tensor 'w': data_offsets [0, 16] outside the 15 data bytes"));
  EXPECT_THAT(fail(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                   R"("b":{"dtype":"F16","shape":[8],"data_offsets":[4,20]}})"),
              HasSubstr("tensor 'b': data_offsets [4, 20] outside"));
}

TEST_F(SafetensorsHostile, RecognizedButUnusableDtypes) {
  test::write_bytes(path_, st_bytes(R"({"i":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},)"
                                    R"("l":{"dtype":"I64","shape":[1],"data_offsets":[3,11]},)"
                                    R"("f":{"dtype":"F32","shape":[1],"data_offsets":[11,15]}})",
                                    std::vector<uint8_t>(15, 1)));
  auto m = SafetensorsModel::open(path_);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(m->tensors().size(), 3u);
  for (const char* name : {"i", "l"}) {
    const SafetensorsTensor* t = m->find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_FALSE(t->view.valid()) << name;
    EXPECT_EQ(t->view.nbytes, 0u) << name;
  }
  EXPECT_EQ(m->find("i")->dtype, "I8");
  EXPECT_EQ(m->find("i")->shape, std::vector<int64_t>{3});
  EXPECT_TRUE(m->find("f")->view.valid());
  // Sizes are still checked for recognized dtypes.
  EXPECT_THAT(fail(one(R"({"dtype":"I64","shape":[2],"data_offsets":[0,8]})")),
              HasSubstr("tensor 'w': 8 bytes stored but shape [2] of I64 needs 16"));
}

// Every cut of the header region, and ~100 in the data region, of a small generated file fails cleanly.
TEST_F(SafetensorsHostile, EveryTruncationFailsCleanly) {
  std::vector<SafetensorsSpec> specs;
  for (int i = 0; i < 6; ++i) specs.push_back({fmt::format("model.layers.{}.weight", i), i % 2 ? "F16" : "F32", {16, 8}});
  const std::string full_path = dir_.file("full.safetensors");
  ASSERT_TRUE(write_safetensors(full_path, specs, fill_pattern));
  const std::vector<uint8_t> full = slurp(full_path);
  uint64_t n;
  std::memcpy(&n, full.data(), 8);
  const uint64_t data_start = 8 + n;
  ASSERT_TRUE(SafetensorsModel::open(full_path).ok());

  std::vector<uint64_t> lengths;
  for (uint64_t len = 0; len <= data_start; ++len) lengths.push_back(len);
  for (uint64_t k = 1; k <= 100; ++k) lengths.push_back(data_start + (full.size() - data_start) * k / 101);
  lengths.push_back(full.size() - 1);
  test::write_bytes(path_, full);
  for (auto it = lengths.rbegin(); it != lengths.rend(); ++it) {
    const uint64_t len = *it;
    fs::resize_file(path_, len);
    auto m = SafetensorsModel::open(path_);
    ASSERT_FALSE(m.ok()) << "a file cut to " << len << " bytes opened";
    ASSERT_THAT(m.error(), HasSubstr(path_)) << len;
    const char* want = len < 8 ? "too short" : len < data_start ? "header length" : "outside the";
    ASSERT_THAT(m.error(), HasSubstr(want)) << len;
  }
}

// ---- Sharded models --------------------------------------------------------------------------

class SafetensorsSharded : public ::testing::Test {
 protected:
  static constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char* kShard2 = "model-00002-of-00002.safetensors";
  void SetUp() override {
    ASSERT_TRUE(write_safetensors(dir_.file(kShard1), {{"a", "F32", {4}}, {"b", "BF16", {2, 3}}}, fill_pattern));
    ASSERT_TRUE(write_safetensors(dir_.file(kShard2), {{"c", "F16", {5}}},
                                  [](size_t i, std::span<uint8_t> out) { return fill_pattern(i + 2, out); }));
  }
  // Writes the index with the given weight_map entries ("name": "file").
  void write_index(const std::string& entries) {
    write_text(index_path(), R"({"metadata":{"total_size":48},"weight_map":{)" + entries + "}}");
  }
  void write_good_index() {
    write_index(fmt::format(R"("a":"{0}","b":"{0}","c":"{1}")", kShard1, kShard2));
  }
  std::string index_path() const { return dir_.file("model.safetensors.index.json"); }
  TempDir dir_;
};

TEST_F(SafetensorsSharded, OpensViaFolderAndIndex) {
  write_good_index();
  for (const std::string& path : {dir_.path(), index_path()}) {
    auto m = SafetensorsModel::open(path);
    ASSERT_TRUE(m.ok()) << m.error();
    ASSERT_EQ(m->file_paths().size(), 2u);
    EXPECT_THAT(m->file_paths()[0], HasSubstr(kShard1));
    EXPECT_THAT(m->file_paths()[1], HasSubstr(kShard2));
    ASSERT_EQ(m->tensors().size(), 3u);
    const char* names[] = {"a", "b", "c"};
    const int files[] = {0, 0, 1};
    for (size_t i = 0; i < 3; ++i) {
      const SafetensorsTensor* t = m->find(names[i]);
      ASSERT_NE(t, nullptr) << names[i];
      EXPECT_EQ(t->file_index, files[i]) << names[i];
      size_t bad = 0;
      for (size_t j = 0; j < t->view.nbytes; ++j) bad += t->view.data[j] != pattern(i, j);
      EXPECT_EQ(bad, 0u) << names[i];
    }
    EXPECT_EQ(m->find("b")->view.ne, (std::array<int64_t, 4>{3, 2, 1, 1}));
  }
}

TEST_F(SafetensorsSharded, IndexNamesTensorNotInItsFile) {
  write_index(fmt::format(R"("a":"{0}","b":"{0}","c":"{1}","d":"{0}")", kShard1, kShard2));
  EXPECT_THAT(open_error(dir_.path(), dir_.file(kShard1)), HasSubstr("index lists tensor 'd' in this file, but it is not there"));
  write_index(fmt::format(R"("a":"{1}","b":"{0}","c":"{1}")", kShard1, kShard2));  // 'a' is in shard 1
  EXPECT_THAT(open_error(index_path(), dir_.file(kShard2)), HasSubstr("index lists tensor 'a' in this file"));
}

TEST_F(SafetensorsSharded, BadFileNames) {
  for (const char* file : {"../x", "sub/x.safetensors", "/etc/passwd", ".."}) {
    write_index(fmt::format(R"("a":"{}")", file));
    EXPECT_THAT(open_error(index_path(), index_path()),
                HasSubstr(fmt::format("weight_map['a'] = '{}' is not a plain file name", file)));
  }
  write_index(R"("a":3)");
  EXPECT_THAT(open_error(index_path(), index_path()), HasSubstr("weight_map['a'] is not a file name"));
  write_index(R"("a":"")");  // names the folder itself
  EXPECT_THAT(open_error(index_path(), dir_.path()), HasSubstr("not a regular file"));
}

TEST_F(SafetensorsSharded, MissingShard) {
  write_good_index();
  fs::remove(dir_.file(kShard2));
  EXPECT_THAT(open_error(dir_.path(), dir_.file(kShard2)), HasSubstr("cannot open"));
}

TEST_F(SafetensorsSharded, TensorInTwoShards) {
  ASSERT_TRUE(write_safetensors(dir_.file(kShard2), {{"a", "F32", {4}}, {"c", "F16", {5}}}, fill_pattern));
  write_good_index();
  EXPECT_THAT(open_error(dir_.path(), dir_.file(kShard2)), HasSubstr("tensor 'a' appears in more than one file"));
}

TEST_F(SafetensorsSharded, BadIndex) {
  write_text(index_path(), "{\"weight_map\":");
  EXPECT_THAT(open_error(dir_.path(), index_path()), HasSubstr("not valid JSON"));
  write_text(index_path(), "[]");
  EXPECT_THAT(open_error(dir_.path(), index_path()), HasSubstr("not valid JSON"));
  write_text(index_path(), R"({"metadata":{}})");
  EXPECT_THAT(open_error(dir_.path(), index_path()), HasSubstr("missing object 'weight_map'"));
  write_text(index_path(), R"({"weight_map":["a"]})");
  EXPECT_THAT(open_error(dir_.path(), index_path()), HasSubstr("missing object 'weight_map'"));
  write_index("");
  EXPECT_THAT(open_error(dir_.path(), index_path()), HasSubstr("weight_map is empty"));
  // A corrupt shard is reported with the shard's own path.
  write_good_index();
  std::vector<uint8_t> b = slurp(dir_.file(kShard2));
  b.pop_back();
  test::write_bytes(dir_.file(kShard2), b);
  EXPECT_THAT(open_error(dir_.path(), dir_.file(kShard2)), HasSubstr("tensor 'c': data_offsets"));
}

TEST(SafetensorsFolder, EmptyFolderAndSingleFile) {
  TempDir dir;
  EXPECT_THAT(open_error(dir.path(), dir.path()), HasSubstr("no model.safetensors or model.safetensors.index.json"));
  ASSERT_TRUE(write_safetensors(dir.file("model.safetensors"), {{"x", "F32", {2}}}, fill_pattern));
  auto m = SafetensorsModel::open(dir.path());
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->file_paths(), std::vector<std::string>{dir.file("model.safetensors")});
  // The index wins over model.safetensors when both exist.
  write_text(dir.file("model.safetensors.index.json"), R"({"weight_map":{"y":"model.safetensors"}})");
  EXPECT_THAT(open_error(dir.path(), dir.file("model.safetensors")), HasSubstr("index lists tensor 'y'"));
}

}  // namespace
}  // namespace infera
