// Tests of the GGUF reader (src/formats/gguf.cc): round trips through GgufWriter, the real fixture
// files, every truncation of a real file, hand-built hostile files (each must fail with one line
// naming the file and the key or tensor at fault), and split sets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "unit/test_util.h"

namespace infera {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::HasSubstr;

// ---- Byte-level helpers ----------------------------------------------------------------------

template <typename T>
void put(std::vector<uint8_t>& b, T x) {
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  b.insert(b.end(), p, p + sizeof(T));
}

GgufValue uval(GgufType t, uint64_t x) { return {t, x}; }
GgufValue ival(GgufType t, int64_t x) { return {t, x}; }
GgufValue fval(GgufType t, double x) { return {t, x}; }
GgufValue arr(GgufType elem, std::vector<GgufValue> items) { return GgufValue::of_array(elem, std::move(items)); }

// A value nested `levels` arrays deep: levels=1 is [7], levels=2 is [[7]], ...
GgufValue nested(int levels) {
  GgufValue v = arr(GgufType::I32, {GgufValue::of_i32(7)});
  for (int i = 1; i < levels; ++i) v = arr(GgufType::ARRAY, {v});
  return v;
}

// A GGUF file built field by field, so tests can write what no writer would.
struct RawGguf {
  uint32_t version = 3;
  std::optional<int64_t> n_tensors, n_kv;  // overrides of the counts
  uint32_t alignment = 32;                 // padding before the data section
  std::vector<uint8_t> kvs, infos, data;
  int64_t kv_count = 0, tensor_count = 0;

  RawGguf& kv_raw(const std::string& key, uint32_t type, const std::vector<uint8_t>& payload) {
    gguf_append_string(kvs, key);
    put<uint32_t>(kvs, type);
    kvs.insert(kvs.end(), payload.begin(), payload.end());
    ++kv_count;
    return *this;
  }
  RawGguf& kv(const std::string& key, const GgufValue& v) {
    std::vector<uint8_t> payload;
    gguf_append_value(payload, v);
    return kv_raw(key, static_cast<uint32_t>(v.type), payload);
  }
  RawGguf& tensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, uint64_t offset) {
    gguf_append_string(infos, name);
    put<uint32_t>(infos, static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) put<int64_t>(infos, d);
    put<uint32_t>(infos, type);
    put<uint64_t>(infos, offset);
    ++tensor_count;
    return *this;
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, version);
    put<int64_t>(b, n_tensors.value_or(tensor_count));
    put<int64_t>(b, n_kv.value_or(kv_count));
    b.insert(b.end(), kvs.begin(), kvs.end());
    b.insert(b.end(), infos.begin(), infos.end());
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    b.insert(b.end(), data.begin(), data.end());
    return b;
  }
};

// Deterministic tensor contents: byte j of tensor i.
uint8_t pattern(size_t i, size_t j) { return static_cast<uint8_t>(i * 37 + j * 11 + 5); }

Status fill_pattern(size_t i, std::span<uint8_t> out) {
  for (size_t j = 0; j < out.size(); ++j) out[j] = pattern(i, j);
  return Status::ok();
}

void expect_pattern(const GgufTensor& t, size_t i) {
  ASSERT_NE(t.view.data, nullptr) << t.name;
  size_t bad = 0;
  for (size_t j = 0; j < t.view.nbytes; ++j) bad += t.view.data[j] != pattern(i, j);
  EXPECT_EQ(bad, 0u) << t.name << ": bytes differ from what was written";
}

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

// Where the data section of a GGUF file starts, and the spans of its metadata values longer than
// 256 bytes, found by walking the header independently of the reader.
struct Layout {
  uint64_t data_start = 0;
  std::vector<std::pair<uint64_t, uint64_t>> long_values;
};
Layout layout_of(const std::vector<uint8_t>& b, uint64_t alignment = 32) {
  size_t p = 8;
  auto rd64 = [&] { uint64_t x; std::memcpy(&x, &b.at(p + 7) - 7, 8); p += 8; return x; };
  auto rd32 = [&] { uint32_t x; std::memcpy(&x, &b.at(p + 3) - 3, 4); p += 4; return x; };
  std::function<void(uint32_t)> skip = [&](uint32_t t) {
    static const int kSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t == 8) { p += rd64(); return; }
    if (t == 9) {
      const uint32_t et = rd32();
      for (uint64_t n = rd64(); n > 0; --n) skip(et);
      return;
    }
    p += kSize[t];
  };
  Layout l;
  const uint64_t n_tensors = rd64(), n_kv = rd64();
  for (uint64_t i = 0; i < n_kv; ++i) {
    p += rd64();
    const uint32_t t = rd32();
    const uint64_t start = p;
    skip(t);
    if (p - start > 256) l.long_values.emplace_back(start, p);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) { p += rd64(); p += 8 * rd32(); p += 12; }
  l.data_start = (p + alignment - 1) / alignment * alignment;
  return l;
}

// Cuts the file at `path` (holding `full`) to each of `lengths`, longest first, and expects every
// open to fail with one line naming the file; cuts inside the data section must name a tensor.
void expect_every_cut_fails(const std::string& path, const std::vector<uint8_t>& full, uint64_t data_start,
                            std::vector<uint64_t> lengths) {
  test::write_bytes(path, full);
  std::sort(lengths.rbegin(), lengths.rend());
  for (uint64_t n : lengths) {
    fs::resize_file(path, n);  // far cheaper than writing thousands of files
    auto f = GgufFile::open(path);
    ASSERT_FALSE(f.ok()) << "a file cut to " << n << " bytes opened";
    ASSERT_THAT(f.error(), HasSubstr(path)) << n;
    ASSERT_EQ(f.error().find('\n'), std::string::npos) << f.error();
    const char* want = n < 4 ? "too short" : n >= data_start ? "extends past the end of the file" : ": ";
    ASSERT_THAT(f.error(), HasSubstr(want)) << n;
  }
}

// Metadata of every value type, array of each, nested arrays; shared by round trip and truncation.
void add_every_value_type(GgufWriter& w) {
  w.add_kv("v.u8", uval(GgufType::U8, 255));
  w.add_kv("v.i8", ival(GgufType::I8, -128));
  w.add_kv("v.u16", uval(GgufType::U16, 65535));
  w.add_kv("v.i16", ival(GgufType::I16, -32768));
  w.add_kv("v.u32", GgufValue::of_u32(4294967295u));
  w.add_kv("v.i32", GgufValue::of_i32(std::numeric_limits<int32_t>::min()));
  w.add_kv("v.f32", GgufValue::of_f32(0.1f));
  w.add_kv("v.bool_t", GgufValue::of_bool(true));
  w.add_kv("v.bool_f", GgufValue::of_bool(false));
  w.add_kv("v.string", GgufValue::of_string(std::string("h\xC3\xA9llo\0x\n", 9)));
  w.add_kv("v.empty", GgufValue::of_string(""));
  w.add_kv("v.u64", GgufValue::of_u64(std::numeric_limits<uint64_t>::max()));
  w.add_kv("v.i64", ival(GgufType::I64, std::numeric_limits<int64_t>::min()));
  w.add_kv("v.f64", fval(GgufType::F64, 0.1));
  w.add_kv("a.u8", arr(GgufType::U8, {uval(GgufType::U8, 1), uval(GgufType::U8, 200)}));
  w.add_kv("a.i8", arr(GgufType::I8, {ival(GgufType::I8, -1), ival(GgufType::I8, 127)}));
  w.add_kv("a.u16", arr(GgufType::U16, {uval(GgufType::U16, 300)}));
  w.add_kv("a.i16", arr(GgufType::I16, {ival(GgufType::I16, -300)}));
  w.add_kv("a.u32", arr(GgufType::U32, {GgufValue::of_u32(1), GgufValue::of_u32(70000)}));
  w.add_kv("a.i32", arr(GgufType::I32, {GgufValue::of_i32(-5), GgufValue::of_i32(6), GgufValue::of_i32(0)}));
  w.add_kv("a.f32", arr(GgufType::F32, {GgufValue::of_f32(1.5f), GgufValue::of_f32(-2.25f)}));
  w.add_kv("a.bool", arr(GgufType::BOOL, {GgufValue::of_bool(true), GgufValue::of_bool(false)}));
  w.add_kv("a.string", arr(GgufType::STRING, {GgufValue::of_string("a"), GgufValue::of_string("")}));
  w.add_kv("a.u64", arr(GgufType::U64, {GgufValue::of_u64(1ull << 40)}));
  w.add_kv("a.i64", arr(GgufType::I64, {ival(GgufType::I64, -(1ll << 40))}));
  w.add_kv("a.f64", arr(GgufType::F64, {fval(GgufType::F64, 1e300)}));
  w.add_kv("a.empty", arr(GgufType::U32, {}));
  w.add_kv("a.nested", arr(GgufType::ARRAY, {arr(GgufType::I32, {GgufValue::of_i32(1), GgufValue::of_i32(2)}),
                                             arr(GgufType::I32, {}), arr(GgufType::I32, {GgufValue::of_i32(3)})}));
  w.add_kv("a.deep4", nested(4));  // the deepest nesting the reader accepts
}

// Writes `bytes` to `path`, opens it, expects failure, and returns the message (which must name the file).
std::string open_error(const std::string& path, const std::vector<uint8_t>& bytes) {
  test::write_bytes(path, bytes);
  auto f = GgufFile::open(path);
  EXPECT_FALSE(f.ok()) << "opened a hostile file";
  if (f.ok()) return "";
  EXPECT_THAT(f.error(), HasSubstr(path));
  EXPECT_EQ(f.error().find('\n'), std::string::npos) << "error is more than one line: " << f.error();
  return f.error();
}

class GgufHostile : public ::testing::Test {
 protected:
  std::string fail(const RawGguf& g) { return open_error(path_, g.bytes()); }
  // A well-formed file with one F32 tensor "w" of 8 elements, for patching.
  static RawGguf one_tensor() {
    RawGguf g;
    g.kv("general.architecture", GgufValue::of_string("qwen2")).tensor("w", {8}, 0, 0);
    g.data.assign(32, 1);
    return g;
  }
  // one_tensor() plus one more metadata entry or tensor info.
  std::string fail_kv(const std::string& key, const GgufValue& v) { return fail(one_tensor().kv(key, v)); }
  std::string fail_kv_raw(const std::string& key, uint32_t type, const std::vector<uint8_t>& payload) {
    return fail(one_tensor().kv_raw(key, type, payload));
  }
  std::string fail_tensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, uint64_t off = 32) {
    return fail(one_tensor().tensor(name, ne, type, off));
  }
  TempDir dir_;
  std::string path_ = dir_.file("hostile.gguf");
};

// ---- Round trip through GgufWriter -----------------------------------------------------------

TEST(GgufRoundTrip, EveryValueTypeAlignmentAndData) {
  TempDir dir;
  const std::string path = dir.file("all.gguf");
  GgufWriter w(64);
  w.add_kv("general.alignment", GgufValue::of_u32(64));
  add_every_value_type(w);
  w.add_tensor({"t.f32", DType::F32, {5}});            // 20 bytes, padded to 64
  w.add_tensor({"t.q8", DType::Q8_0, {64, 3}});        // 3 rows x 2 blocks x 34 bytes
  w.add_tensor({"t.f16", DType::F16, {3, 2, 2, 1}});   // 4-D
  w.add_tensor({"t.q4k", DType::Q4_K, {256, 2}});
  ASSERT_TRUE(w.write(path, fill_pattern)) << path;

  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->n_files(), 1);
  ASSERT_EQ(f->metadata().size(), 30u);
  EXPECT_EQ(f->metadata()[1].first, "v.u8");  // insertion order kept

  // Type and value of every entry; arrays show element type, count and every element.
  const struct { const char* key; GgufType type; const char* shown; } want_kv[] = {
      {"v.u8", GgufType::U8, "255"}, {"v.i8", GgufType::I8, "-128"}, {"v.u16", GgufType::U16, "65535"},
      {"v.i16", GgufType::I16, "-32768"}, {"v.u32", GgufType::U32, "4294967295"},
      {"v.i32", GgufType::I32, "-2147483648"}, {"v.bool_t", GgufType::BOOL, "true"},
      {"v.bool_f", GgufType::BOOL, "false"}, {"v.empty", GgufType::STRING, "\"\""},
      {"v.u64", GgufType::U64, "18446744073709551615"}, {"v.i64", GgufType::I64, "-9223372036854775808"},
      {"v.f64", GgufType::F64, "0.1"}, {"a.u8", GgufType::ARRAY, "u8[2] [1, 200]"},
      {"a.i8", GgufType::ARRAY, "i8[2] [-1, 127]"}, {"a.u16", GgufType::ARRAY, "u16[1] [300]"},
      {"a.i16", GgufType::ARRAY, "i16[1] [-300]"}, {"a.u32", GgufType::ARRAY, "u32[2] [1, 70000]"},
      {"a.i32", GgufType::ARRAY, "i32[3] [-5, 6, 0]"}, {"a.f32", GgufType::ARRAY, "f32[2] [1.5, -2.25]"},
      {"a.bool", GgufType::ARRAY, "bool[2] [true, false]"}, {"a.string", GgufType::ARRAY, "string[2] [\"a\", \"\"]"},
      {"a.u64", GgufType::ARRAY, "u64[1] [1099511627776]"}, {"a.i64", GgufType::ARRAY, "i64[1] [-1099511627776]"},
      {"a.f64", GgufType::ARRAY, "f64[1] [1e+300]"}, {"a.empty", GgufType::ARRAY, "u32[0] []"},
      {"a.nested", GgufType::ARRAY, "array[3] [i32[2] [1, 2], i32[0] [], i32[1] [3]]"},
      {"a.deep4", GgufType::ARRAY, "array[1] [array[1] [array[1] [i32[1] [7]]]]"},
  };
  for (const auto& w : want_kv) {
    const GgufValue* v = f->find(w.key);
    ASSERT_NE(v, nullptr) << w.key;
    EXPECT_EQ(v->type, w.type) << w.key;
    EXPECT_EQ(v->to_display(100), w.shown) << w.key;
  }
  EXPECT_EQ(std::get<uint64_t>(f->find("v.u64")->v), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(std::get<int64_t>(f->find("v.i8")->v), -128);
  EXPECT_EQ(std::get<double>(f->find("v.f32")->v), static_cast<double>(0.1f));
  EXPECT_EQ(f->find("v.f32")->type, GgufType::F32);
  EXPECT_EQ(*f->find("v.string")->as_string(), std::string("h\xC3\xA9llo\0x\n", 9));
  const GgufArray* a = f->find("a.nested")->as_array();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->elem_type, GgufType::ARRAY);
  EXPECT_EQ(a->items[0].as_array()->elem_type, GgufType::I32);
  EXPECT_EQ(std::get<int64_t>(a->items[2].as_array()->items[0].v), 3);

  // Tensors: shape, type, size, aligned offsets, exact bytes.
  ASSERT_EQ(f->tensors().size(), 4u);
  const struct { const char* name; DType type; int n_dims; std::array<int64_t, 4> ne; uint64_t nbytes; } want[] = {
      {"t.f32", DType::F32, 1, {5, 1, 1, 1}, 20},
      {"t.q8", DType::Q8_0, 2, {64, 3, 1, 1}, 204},
      {"t.f16", DType::F16, 4, {3, 2, 2, 1}, 24},
      {"t.q4k", DType::Q4_K, 2, {256, 2, 1, 1}, 288},
  };
  for (size_t i = 0; i < 4; ++i) {
    const GgufTensor& t = f->tensors()[i];
    EXPECT_EQ(t.name, want[i].name);
    EXPECT_EQ(f->find_tensor(want[i].name), &t);
    EXPECT_EQ(t.view.type, want[i].type) << t.name;
    EXPECT_EQ(t.ggml_type, static_cast<uint32_t>(want[i].type)) << t.name;
    EXPECT_EQ(t.view.n_dims, want[i].n_dims) << t.name;
    EXPECT_EQ(t.view.ne, want[i].ne) << t.name;
    EXPECT_EQ(t.view.nbytes, want[i].nbytes) << t.name;
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.view.data) % 64, 0u) << t.name << ": data not 64-byte aligned";
    EXPECT_EQ(t.file_index, 0);
    expect_pattern(t, i);
  }
  EXPECT_EQ(f->tensors()[1].offset, 64u);
  EXPECT_EQ(f->tensors()[2].offset, 64u + 256u);
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
  EXPECT_EQ(f->find("nope"), nullptr);
  const std::vector<uint8_t> file = slurp(path);
  const uint64_t ds = layout_of(file, 64).data_start;
  EXPECT_EQ(ds % 64, 0u);
  EXPECT_EQ(file.size(), ds + 64 + 256 + 64 + 320);  // last tensor padded too
  for (const GgufTensor& t : f->tensors())
    EXPECT_EQ(std::memcmp(t.view.data, file.data() + ds + t.offset, t.view.nbytes), 0) << t.name;
}

TEST(GgufRoundTrip, TypedGetters) {
  TempDir dir;
  const std::string path = dir.file("getters.gguf");
  GgufWriter w;
  add_every_value_type(w);
  w.add_kv("v.one", uval(GgufType::U8, 1));
  ASSERT_TRUE(w.write(path, fill_pattern));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();

  // get_int accepts every integer type; get_float accepts integers too.
  const std::pair<const char*, int64_t> ints[] = {
      {"v.u8", 255}, {"v.i8", -128}, {"v.u16", 65535}, {"v.i16", -32768}, {"v.u32", 4294967295},
      {"v.i32", std::numeric_limits<int32_t>::min()}, {"v.i64", std::numeric_limits<int64_t>::min()}};
  for (const auto& [key, value] : ints) {
    auto r = f->get_int(key);
    ASSERT_TRUE(r.ok()) << key << ": " << r.error();
    EXPECT_EQ(*r, value) << key;
    EXPECT_EQ(*f->get_float(key), static_cast<double>(value)) << key;
  }
  EXPECT_EQ(*f->get_float("v.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(*f->get_float("v.f64"), 0.1);
  EXPECT_EQ(*f->get_bool("v.bool_t"), true);
  EXPECT_EQ(*f->get_bool("v.bool_f"), false);
  EXPECT_EQ(*f->get_bool("v.one"), true);  // an integer 0/1 is accepted as bool
  EXPECT_EQ(*f->get_string("v.string"), std::string("h\xC3\xA9llo\0x\n", 9));
  EXPECT_EQ(*f->get_string_array("a.string"), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(*f->get_int_array("a.i32"), (std::vector<int64_t>{-5, 6, 0}));
  EXPECT_EQ(*f->get_int_array("a.u64"), (std::vector<int64_t>{int64_t{1} << 40}));
  EXPECT_EQ(*f->get_int_or("absent", 42), 42);
  EXPECT_EQ(*f->get_int_or("v.u16", 42), 65535);
  EXPECT_EQ(*f->get_float_or("absent", 1.25), 1.25);
  EXPECT_EQ(*f->get_bool_or("absent", true), true);

  auto expect_err = [&](const auto& r, const char* key, const char* what) {
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_THAT(r.error(), HasSubstr(path + ": "));
    EXPECT_THAT(r.error(), HasSubstr(std::string("'") + key + "'"));
    EXPECT_THAT(r.error(), HasSubstr(what));
  };
  expect_err(f->get_int("v.string"), "v.string", "is string, expected an integer");
  expect_err(f->get_int("v.f32"), "v.f32", "is f32, expected an integer");
  expect_err(f->get_int("v.u64"), "v.u64", "is u64, expected an integer");  // above INT64_MAX
  expect_err(f->get_int_or("v.bool_t", 0), "v.bool_t", "is bool, expected an integer");  // present, wrong type
  expect_err(f->get_string("v.u32"), "v.u32", "is u32, expected string");
  expect_err(f->get_float("v.string"), "v.string", "is string, expected a number");
  expect_err(f->get_float_or("a.f32", 0), "a.f32", "is array, expected a number");
  expect_err(f->get_bool("v.u8"), "v.u8", "is u8, expected bool");
  expect_err(f->get_bool_or("v.f64", false), "v.f64", "is f64, expected bool");
  expect_err(f->get_string_array("a.u8"), "a.u8", "expected array of string");
  expect_err(f->get_string_array("v.string"), "v.string", "expected array of string");
  expect_err(f->get_int_array("a.string"), "a.string", "element 0 is not an integer");
  expect_err(f->get_int_array("a.f32"), "a.f32", "element 0 is not an integer");
  expect_err(f->get_int_array("v.u32"), "v.u32", "expected an array of integers");
  expect_err(f->get_int("absent"), "absent", "required key 'absent' is missing");
  expect_err(f->get_string("absent"), "absent", "is missing");
  expect_err(f->get_float("absent"), "absent", "is missing");
  expect_err(f->get_bool("absent"), "absent", "is missing");
  expect_err(f->get_string_array("absent"), "absent", "is missing");
  expect_err(f->get_int_array("absent"), "absent", "is missing");
}

// ---- Real fixture files ----------------------------------------------------------------------

TEST(GgufFixture, TinyQwen2Q4KM) {
  const std::string path = test::fixture("models/tiny-qwen2-q4_k_m.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->n_files(), 1);
  EXPECT_EQ(f->metadata().size(), 24u);
  EXPECT_EQ(*f->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(*f->get_int("general.file_type"), 15);  // Q4_K_M
  EXPECT_EQ(*f->get_int("qwen2.block_count"), 2);
  EXPECT_EQ(*f->get_int("qwen2.embedding_length"), 256);
  EXPECT_FLOAT_EQ(static_cast<float>(*f->get_float("qwen2.attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_EQ(*f->get_bool("tokenizer.ggml.add_bos_token"), true);
  auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  EXPECT_EQ(tokens->size(), 1088u);
  EXPECT_EQ(f->get_int_array("tokenizer.ggml.token_type")->size(), 1088u);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.merges")->size(), 768u);

  ASSERT_EQ(f->tensors().size(), 27u);
  EXPECT_EQ(f->tensors()[0].name, "output.weight");
  const std::pair<const char*, DType> types[] = {
      {"output.weight", DType::Q6_K},          {"token_embd.weight", DType::Q4_K},
      {"blk.0.attn_norm.weight", DType::F32},  {"blk.0.attn_k.bias", DType::F32},
      {"blk.0.ffn_down.weight", DType::Q4_K},  {"blk.1.ffn_down.weight", DType::Q6_K},
      {"blk.1.attn_v.weight", DType::Q6_K},    {"blk.0.attn_v.weight", DType::Q4_K},
  };
  for (const auto& [name, type] : types) {
    const GgufTensor* t = f->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->view.type, type) << name;
  }
  const GgufTensor* emb = f->find_tensor("token_embd.weight");
  EXPECT_EQ(emb->view.n_dims, 2);
  EXPECT_EQ(emb->view.ne, (std::array<int64_t, 4>{256, 1088, 1, 1}));
  EXPECT_EQ(emb->view.nbytes, 1088u * 144u);
  EXPECT_EQ(emb->offset, 229504u);
  // The view points at the bytes of the file at data start + offset.
  const std::vector<uint8_t> file = slurp(path);
  const uint64_t ds = layout_of(file).data_start;
  EXPECT_EQ(ds, 31904u);
  for (const GgufTensor& t : f->tensors()) {
    ASSERT_LE(ds + t.offset + t.view.nbytes, file.size()) << t.name;
    EXPECT_EQ(std::memcmp(t.view.data, file.data() + ds + t.offset, t.view.nbytes), 0) << t.name;
  }
}

TEST(GgufFixture, AllFixturesOpen) {
  for (const auto& e : fs::directory_iterator(test::fixture("models"))) {
    if (e.path().extension() != ".gguf") continue;
    auto f = GgufFile::open(e.path().string());
    ASSERT_TRUE(f.ok()) << f.error();
    EXPECT_GT(f->tensors().size(), 0u) << e.path();
    EXPECT_TRUE(f->get_string("general.architecture").ok()) << e.path();
  }
}

// Cuts of the real q2_k file (this runs under ASan in CI, where one failed open of this header costs
// ~4 ms, so not all 31904 header lengths are tried): every length outside the three big tokenizer
// arrays and the chat template (fixed header, every key, type tag and array header, every scalar,
// all 27 tensor infos, the padding); inside those long values the first and last 48 bytes and
// every 97th byte; and 200 lengths spread through the data section.
TEST(GgufFixture, TruncationsFailCleanly) {
  const std::vector<uint8_t> full = slurp(test::fixture("models/tiny-qwen2-q2_k.gguf"));
  ASSERT_EQ(full.size(), 610976u);
  const Layout l = layout_of(full);
  ASSERT_EQ(l.data_start, 31904u);
  ASSERT_EQ(l.long_values.size(), 4u);  // tokens, token_type, merges, chat_template
  std::vector<uint64_t> lengths;
  for (uint64_t n = 0; n <= l.data_start; ++n) {
    bool sampled_out = false;
    for (const auto& [b, e] : l.long_values)
      sampled_out |= n >= b + 48 && n + 48 < e && (n - b) % 97 != 0;
    if (!sampled_out) lengths.push_back(n);
  }
  for (uint64_t k = 1; k <= 200; ++k) lengths.push_back(l.data_start + (full.size() - l.data_start) * k / 201);
  lengths.push_back(full.size() - 1);
  TempDir dir;
  expect_every_cut_fails(dir.file("cut.gguf"), full, l.data_start, lengths);
}

// Every single length of a generated file holding every value type and two tensors.
TEST(GgufRoundTrip, EveryTruncationFailsCleanly) {
  TempDir dir;
  GgufWriter w;
  add_every_value_type(w);
  w.add_tensor({"t.f32", DType::F32, {5}});
  w.add_tensor({"t.q8", DType::Q8_0, {64, 3}});
  ASSERT_TRUE(w.write(dir.file("full.gguf"), fill_pattern));
  const std::vector<uint8_t> full = slurp(dir.file("full.gguf"));
  const uint64_t ds = layout_of(full).data_start;
  const uint64_t data_end = ds + 32 + 204;  // the last tensor ends here; padding follows
  ASSERT_EQ(full.size(), ds + 256);
  std::vector<uint64_t> lengths;
  for (uint64_t n = 0; n < data_end; ++n) lengths.push_back(n);
  expect_every_cut_fails(dir.file("cut.gguf"), full, ds, lengths);
  // Cutting off only the trailing padding leaves a valid file.
  test::write_bytes(dir.file("cut.gguf"), std::vector<uint8_t>(full.begin(), full.begin() + data_end));
  auto f = GgufFile::open(dir.file("cut.gguf"));
  ASSERT_TRUE(f.ok()) << f.error();
  expect_pattern(*f->find_tensor("t.q8"), 1);
}

// ---- Hostile files ---------------------------------------------------------------------------

TEST_F(GgufHostile, BaselineOpens) {
  test::write_bytes(path_, one_tensor().bytes());
  auto f = GgufFile::open(path_);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->tensors().size(), 1u);
}

TEST_F(GgufHostile, MissingFile) {
  auto f = GgufFile::open(dir_.file("absent.gguf"));
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.error(), HasSubstr(dir_.file("absent.gguf")));
  EXPECT_THAT(open_error(path_, {}), HasSubstr("0 bytes, too short"));
}

TEST_F(GgufHostile, HeaderFields) {
  std::vector<uint8_t> b = one_tensor().bytes();
  b[0] = 'X';
  EXPECT_THAT(open_error(path_, b), HasSubstr("bad magic"));
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    RawGguf g = one_tensor();
    g.version = v;
    EXPECT_THAT(fail(g), HasSubstr(fmt::format("GGUF version {} is not supported", v)));
  }
  RawGguf v2 = one_tensor();
  v2.version = 2;
  test::write_bytes(path_, v2.bytes());
  EXPECT_EQ(GgufFile::open(path_)->version(), 2u);
}

TEST_F(GgufHostile, ImpossibleCounts) {
  for (int64_t n : {int64_t{1} << 60, int64_t{-1}, std::numeric_limits<int64_t>::min(), int64_t{1000}}) {
    RawGguf g = one_tensor();
    g.n_tensors = n;
    EXPECT_THAT(fail(g), HasSubstr(fmt::format("tensor count {} is impossible", n)));
    g = one_tensor();
    g.n_kv = n;
    EXPECT_THAT(fail(g), HasSubstr(fmt::format("metadata count {} is impossible", n)));
  }
  // A plausible but wrong count misreads the tensor infos as metadata; it must still fail cleanly.
  RawGguf g = one_tensor();
  g.n_kv = 2;
  fail(g);
}

std::vector<uint8_t> array_payload(uint32_t elem_type, uint64_t n, const std::vector<uint8_t>& items) {
  std::vector<uint8_t> p;
  put<uint32_t>(p, elem_type);
  put<uint64_t>(p, n);
  p.insert(p.end(), items.begin(), items.end());
  return p;
}

TEST_F(GgufHostile, KeyAndValueEncoding) {
  RawGguf g;
  put<uint64_t>(g.kvs, 1000);  // key length past the end of the file
  g.kvs.insert(g.kvs.end(), {'a', 'b'});
  g.kv_count = 1;
  EXPECT_THAT(fail(g), HasSubstr("metadata entry 0: key: string length 1000 exceeds the"));
  EXPECT_THAT(fail_kv_raw("k", 13, {0, 0, 0, 0}), HasSubstr("key 'k': value type 13 is not a GGUF value type"));
  EXPECT_THAT(fail_kv_raw("flag", 7, {2}), HasSubstr("key 'flag': bool value is 2"));
  std::vector<uint8_t> len;
  put<uint64_t>(len, 1ull << 62);  // string value length past the end
  EXPECT_THAT(fail_kv_raw("name", 8, len), HasSubstr("key 'name': string length 4611686018427387904 exceeds"));
}

TEST_F(GgufHostile, Arrays) {
  EXPECT_THAT(fail_kv_raw("arr", 9, array_payload(99, 1, {0})),
              HasSubstr("key 'arr': array element type 99 is not a GGUF value type"));
  for (uint64_t n : {uint64_t{1} << 61, ~uint64_t{0}, uint64_t{1} << 25})
    EXPECT_THAT(fail_kv_raw("arr", 9, array_payload(4, n, {1, 0, 0, 0})),
                HasSubstr(fmt::format("key 'arr': array count {} exceeds infera's limit", n)));
  EXPECT_THAT(fail_kv_raw("arr", 9, array_payload(4, 100, {1, 0, 0, 0})),
              HasSubstr("key 'arr': array count 100 cannot fit"));
  // Strings take 8 bytes each at least, arrays 12.
  EXPECT_THAT(fail_kv_raw("arr", 9, array_payload(8, 20, {})), HasSubstr("array count 20 cannot fit"));
  EXPECT_THAT(fail_kv_raw("arr", 9, array_payload(9, 14, {})), HasSubstr("array count 14 cannot fit"));
  EXPECT_THAT(fail_kv_raw("arr", 9, array_payload(7, 2, {1, 5})), HasSubstr("key 'arr': element 1: bool value is 5"));
  EXPECT_THAT(fail_kv("deep", nested(5)),
              HasSubstr("key 'deep': element 0: element 0: element 0: element 0: arrays nested deeper than 4"));
  // Nesting exactly at the limit opens.
  test::write_bytes(path_, one_tensor().kv("ok", nested(4)).bytes());
  EXPECT_TRUE(GgufFile::open(path_).ok());
}

TEST_F(GgufHostile, TensorDims) {
  EXPECT_THAT(fail_tensor("w0", {}, 0), HasSubstr("tensor 'w0': 0 dimensions (must be 1..4)"));
  EXPECT_THAT(fail_tensor("w5", {1, 1, 1, 1, 1}, 0), HasSubstr("tensor 'w5': 5 dimensions (must be 1..4)"));
  EXPECT_THAT(fail_tensor("neg", {4, -3}, 0), HasSubstr("tensor 'neg': dimension 1 is -3 (impossible size)"));
  EXPECT_THAT(fail_tensor("ovf", {int64_t{1} << 32, int64_t{1} << 32}, 0),  // product is 2^64
              HasSubstr("tensor 'ovf': dimension 1 is 4294967296 (impossible size)"));
  EXPECT_THAT(fail_tensor("huge", {int64_t{1} << 30, int64_t{1} << 30}, 0),  // 2^60 elements, no overflow
              HasSubstr("tensor 'huge': dimension 1 is 1073741824 (impossible size)"));
  EXPECT_THAT(fail_tensor("max", {std::numeric_limits<int64_t>::max()}, 0), HasSubstr("tensor 'max': dimension 0 is"));
  RawGguf g;
  g.n_tensors = 1;
  gguf_append_string(g.infos, "cut");
  put<uint32_t>(g.infos, 2);
  put<int64_t>(g.infos, 4);  // then the end of the file, within the second dimension
  std::vector<uint8_t> b = g.bytes();
  b.resize(24 + 8 + 3 + 4 + 8 + 5);
  EXPECT_THAT(open_error(path_, b), HasSubstr("tensor 'cut': info cut short by end of file"));
  // A zero dimension is a legal empty tensor.
  test::write_bytes(path_, RawGguf().tensor("empty", {0, int64_t{1} << 20}, 0, 0).bytes());
  auto f = GgufFile::open(path_);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->find_tensor("empty")->view.nbytes, 0u);
}

TEST_F(GgufHostile, TensorTypes) {
  EXPECT_THAT(fail_tensor("blk.0.attn_q.weight", {256, 4}, 16),
              HasSubstr("tensor 'blk.0.attn_q.weight' has type IQ2_XXS (GGML type 16), which infera does not support"));
  EXPECT_THAT(fail_tensor("t99", {32}, 99), HasSubstr("tensor 't99' has unknown GGML type 99"));
  EXPECT_THAT(fail_tensor("q", {33, 2}, static_cast<uint32_t>(DType::Q4_0)),
              HasSubstr("tensor 'q': row length 33 is not a multiple of the Q4_0 block size 32"));
  EXPECT_THAT(fail_tensor("k", {128}, static_cast<uint32_t>(DType::Q4_K)),
              HasSubstr("tensor 'k': row length 128 is not a multiple of the Q4_K block size 256"));
}

TEST_F(GgufHostile, TensorOffsets) {
  EXPECT_THAT(fail_tensor("odd", {8}, 0, 16), HasSubstr("tensor 'odd': offset 16 is not a multiple of the alignment 32"));
  EXPECT_THAT(fail_tensor("far", {8}, 0, 1024),
              HasSubstr("tensor 'far': data [offset 1024, size 32] extends past the end of the file"));
  EXPECT_THAT(fail_tensor("wrap", {8}, 0, ~uint64_t{31}),  // offset + size wraps around 2^64
              HasSubstr("tensor 'wrap': data [offset 18446744073709551584, size 32] extends past"));
  EXPECT_THAT(fail_tensor("tail", {16}, 0, 0),  // 64 bytes, but only 32 in the data section
              HasSubstr("tensor 'tail': data [offset 0, size 64] extends past the end of the file (data section "
                        "holds 32 bytes"));
  RawGguf g = one_tensor();
  g.data.resize(31);  // the first tensor itself cut by one byte
  EXPECT_THAT(fail(g), HasSubstr("tensor 'w': data [offset 0, size 32]"));
}

TEST_F(GgufHostile, Duplicates) {
  EXPECT_THAT(fail_kv("general.architecture", GgufValue::of_string("llama")),
              HasSubstr("key 'general.architecture' appears twice"));
  EXPECT_THAT(fail_tensor("w", {8}, 0, 0), HasSubstr("tensor 'w' appears twice"));
}

TEST_F(GgufHostile, Alignment) {
  for (uint32_t a : {0u, 3u, 48u, 1u << 21})
    EXPECT_THAT(fail_kv("general.alignment", GgufValue::of_u32(a)),
                HasSubstr(fmt::format("key 'general.alignment' is {} (must be a power of two up to 1048576)", a)));
  EXPECT_THAT(fail_kv("general.alignment", GgufValue::of_string("64")), HasSubstr("key 'general.alignment' is \"64\""));
  EXPECT_THAT(fail_kv("general.alignment", GgufValue::of_f32(32.0f)), HasSubstr("key 'general.alignment' is 32"));
  EXPECT_THAT(fail_kv("general.alignment", ival(GgufType::I32, -32)), HasSubstr("key 'general.alignment' is -32"));

  // Any integer type is accepted; the data section and offsets follow the value.
  RawGguf g;
  g.kv("general.alignment", ival(GgufType::I64, 16));
  g.alignment = 16;
  g.tensor("a", {2}, 0, 0).tensor("b", {2}, 0, 16);
  g.data.assign(32, 9);
  test::write_bytes(path_, g.bytes());
  auto f = GgufFile::open(path_);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->alignment(), 16u);
  EXPECT_EQ(f->find_tensor("b")->view.data - f->find_tensor("a")->view.data, 16);
  // With alignment 64 an offset of 32 is misaligned.
  g = RawGguf();
  g.kv("general.alignment", uval(GgufType::U8, 64));
  g.alignment = 64;
  g.tensor("a", {2}, 0, 32);
  g.data.assign(64, 0);
  EXPECT_THAT(fail(g), HasSubstr("tensor 'a': offset 32 is not a multiple of the alignment 64"));
}

// ---- Split files -----------------------------------------------------------------------------

class GgufSplit : public ::testing::Test {
 protected:
  // Writes prefix-00001-of-00002.gguf (tensors a, b) and prefix-00002-of-00002.gguf (tensor c).
  void write_parts(int64_t tensors_count = 3, uint16_t no2 = 1, const char* third = "c") {
    GgufWriter p1;
    p1.add_kv("general.architecture", GgufValue::of_string("qwen2"));
    p1.add_kv("split.no", uval(GgufType::U16, 0));
    p1.add_kv("split.count", uval(GgufType::U16, 2));
    p1.add_kv("split.tensors.count", ival(GgufType::I32, tensors_count));
    p1.add_tensor({"a", DType::F32, {8, 2}});
    p1.add_tensor({"b", DType::Q8_0, {32}});
    ASSERT_TRUE(p1.write(part(1), fill_pattern));
    GgufWriter p2;
    p2.add_kv("split.no", uval(GgufType::U16, no2));
    p2.add_kv("split.count", uval(GgufType::U16, 2));
    p2.add_kv("split.tensors.count", ival(GgufType::I32, tensors_count));
    p2.add_tensor({third, DType::F16, {16, 3}});
    ASSERT_TRUE(p2.write(part(2), [](size_t i, std::span<uint8_t> out) { return fill_pattern(i + 2, out); }));
  }
  std::string part(int i, int n = 2) const { return make_split_name(dir_.file("model"), i, n); }
  // Opens `path`, expects failure and returns the message, which must name the file at fault.
  static std::string open_error(const std::string& path, const std::string& at_fault = "") {
    auto f = GgufFile::open(path);
    EXPECT_FALSE(f.ok()) << path;
    EXPECT_THAT(f.error(), HasSubstr(at_fault.empty() ? path : at_fault));
    return f.error();
  }
  TempDir dir_;
};

TEST_F(GgufSplit, OpensAllParts) {
  write_parts();
  auto f = GgufFile::open(part(1));
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f->n_files(), 2);
  EXPECT_EQ(*f->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(*f->get_int("split.count"), 2);
  ASSERT_EQ(f->tensors().size(), 3u);
  const char* names[] = {"a", "b", "c"};
  const int files[] = {0, 0, 1};
  for (size_t i = 0; i < 3; ++i) {
    const GgufTensor& t = f->tensors()[i];
    EXPECT_EQ(t.name, names[i]);
    EXPECT_EQ(t.file_index, files[i]) << t.name;
    expect_pattern(t, i);
  }
  EXPECT_EQ(f->find_tensor("c")->view.ne, (std::array<int64_t, 4>{16, 3, 1, 1}));
  EXPECT_EQ(f->find_tensor("c")->offset, 0u);
  EXPECT_EQ(f->find_tensor("b")->view.nbytes, 34u);
}

TEST_F(GgufSplit, SecondPartAlone) {
  write_parts();
  EXPECT_THAT(open_error(part(2)), HasSubstr(part(2) + ": part 2 of a 2-part split model; open the first part"));
}

TEST_F(GgufSplit, MissingPart) {
  write_parts();
  fs::remove(part(2));
  const std::string e = open_error(part(1));
  EXPECT_THAT(e, HasSubstr(part(1) + ": split part 2 of 2 is missing"));
  EXPECT_THAT(e, HasSubstr(part(2)));
}

TEST_F(GgufSplit, BadParts) {
  write_parts(4);
  EXPECT_THAT(open_error(part(1)), HasSubstr(part(1) + ": split.tensors.count says 4 tensors but the parts hold 3"));
  write_parts(3, 1, "a");
  EXPECT_THAT(open_error(part(1), part(2)), HasSubstr(part(2) + ": tensor 'a' appears twice"));
  write_parts();
  std::vector<uint8_t> b = slurp(part(2));
  b.pop_back();
  test::write_bytes(part(2), b);
  EXPECT_THAT(open_error(part(1), part(2)), HasSubstr(part(2) + ": tensor 'c': data"));
}

TEST_F(GgufSplit, NameDisagreesWithMetadata) {
  write_parts();
  fs::rename(part(1), part(1, 3));
  EXPECT_THAT(open_error(part(1, 3)), HasSubstr(part(1, 3) + ": file name says 3 parts but split.count is 2"));
  // A first part renamed without the split suffix cannot find its siblings.
  fs::rename(part(1, 3), dir_.file("renamed.gguf"));
  open_error(dir_.file("renamed.gguf"));
}

TEST_F(GgufSplit, BadSplitCount) {
  for (int64_t n : {int64_t{0}, int64_t{-1}, int64_t{10000}}) {
    GgufWriter w;
    w.add_kv("split.count", ival(GgufType::I64, n));
    ASSERT_TRUE(w.write(part(1), fill_pattern));
    EXPECT_THAT(open_error(part(1)), HasSubstr(fmt::format("{}: split.count is {} (must be 1..9999)", part(1), n)));
  }
  GgufWriter w;
  w.add_kv("split.count", GgufValue::of_string("2"));
  ASSERT_TRUE(w.write(part(1), fill_pattern));
  EXPECT_THAT(open_error(part(1)), HasSubstr("key 'split.count' is string, expected an integer"));
}

// split.no = INT64_MAX once made the error message compute `no + 1`, a signed overflow.
TEST_F(GgufSplit, HugeSplitNoFailsCleanly) {
  GgufWriter w;
  w.add_kv("split.no", ival(GgufType::I64, std::numeric_limits<int64_t>::max()));
  w.add_kv("split.count", uval(GgufType::U16, 2));
  ASSERT_TRUE(w.write(part(1), fill_pattern));
  EXPECT_THAT(open_error(part(1)), HasSubstr("split.no is 9223372036854775807 but split.count is 2"));
}

TEST(GgufSplitName, ParseAndMake) {
  auto s = parse_split_name("model-00001-of-00003.gguf");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->prefix, "model");
  EXPECT_EQ(s->index, 1);
  EXPECT_EQ(s->count, 3);
  s = parse_split_name("/models/DeepSeek-R1-Q4_K_M-00002-of-00010.gguf");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->prefix, "/models/DeepSeek-R1-Q4_K_M");
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 10);
  s = parse_split_name("x-99999-of-99999.gguf");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->index, 99999);
  for (const char* bad : {"model.gguf", "model-1-of-3.gguf", "model-00001-of-00003.gguf.part",
                          "model-00001-of-00003.bin", "model-000001-of-00003.gguf", "model_00001-of-00003.gguf",
                          "model-0000a-of-00003.gguf", ""})
    EXPECT_FALSE(parse_split_name(bad).has_value()) << bad;

  EXPECT_EQ(make_split_name("model", 1, 3), "model-00001-of-00003.gguf");
  EXPECT_EQ(make_split_name("/a/b", 12, 345), "/a/b-00012-of-00345.gguf");
  auto back = parse_split_name(make_split_name("dir/m-x", 7, 9));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->prefix, "dir/m-x");
  EXPECT_EQ(back->index, 7);
  EXPECT_EQ(back->count, 9);
}

}  // namespace
}  // namespace infera
