#include "tensor/dtype.h"

#include <array>
#include <cctype>
#include <string>

#include "base/check.h"

namespace infera {

namespace {

struct Entry {
  uint32_t id;
  DTypeInfo info;
};

constexpr std::array<Entry, 20> kTypes = {{
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, true}},
    {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},
    {9, {"Q8_1", 32, 36, false}},
    {10, {"Q2_K", 256, 84, true}},
    {11, {"Q3_K", 256, 110, true}},
    {12, {"Q4_K", 256, 144, true}},
    {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}},
    {15, {"Q8_K", 256, 292, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {30, {"BF16", 1, 2, true}},
}};

// Names of GGML types that infera knows of but cannot read, for error messages.
constexpr std::array<std::pair<uint32_t, std::string_view>, 14> kOtherNames = {{
    {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"}, {20, "IQ4_NL"},
    {21, "IQ3_S"}, {22, "IQ2_S"}, {23, "IQ4_XS"}, {29, "IQ1_M"}, {34, "TQ1_0"},
    {35, "TQ2_0"}, {31, "Q4_0_4_4"}, {39, "MXFP4"}, {32, "Q4_0_4_8"},
}};

}  // namespace

std::optional<DTypeInfo> dtype_info(uint32_t ggml_type) {
  for (const Entry& e : kTypes)
    if (e.id == ggml_type) return e.info;
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType t) {
  for (const Entry& e : kTypes)
    if (e.id == static_cast<uint32_t>(t)) return e.info;
  CHECK(false && "dtype_info: DType without an entry");
}

std::string_view dtype_name(DType t) { return dtype_info(t).name; }

std::string ggml_type_name(uint32_t ggml_type) {
  if (auto i = dtype_info(ggml_type)) return std::string(i->name);
  for (const auto& [id, name] : kOtherNames)
    if (id == ggml_type) return std::string(name);
  return "type " + std::to_string(ggml_type);
}

std::optional<DType> parse_dtype(std::string_view name) {
  std::string up;
  for (char c : name) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  for (const Entry& e : kTypes)
    if (e.info.name == up) return static_cast<DType>(e.id);
  return std::nullopt;
}

}  // namespace infera
