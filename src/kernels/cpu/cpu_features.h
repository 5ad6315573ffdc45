// What the CPU can do, read once with CPUID, and which kernel set (ISA level) to run.
//
// Levels, each a superset of the one before:
//   scalar  portable C++ (the twin every SIMD kernel is tested against)
//   avx2    AVX2 + FMA + F16C
//   avx512  AVX-512 F/BW/VL + VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later)
//   amx     avx512 + AMX-TILE/INT8 tiles for prompts and batches (Sapphire Rapids and later), once
//           Linux granted the tile state (kernels_amx.cc)
// INFERA_CPU_ISA=scalar|avx2|avx512|amx caps the level (tests force each path this way).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace infera::cpu {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;  // and the OS lets us use the tiles
};

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

// Read once (thread-safe); later calls return the same object.
const CpuFeatures& cpu_features();

// The best level this CPU supports.
Isa best_isa();
// best_isa(), capped by INFERA_CPU_ISA when set (an unknown value is ignored with a warning).
Isa default_isa();
bool isa_supported(Isa isa);

std::string_view isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);
// "avx2 fma f16c avx512f ... amx-int8" for logs and `infera bench`.
std::string feature_string();

}  // namespace infera::cpu
