#include "kernels/cpu/cpu_features.h"

#include <cstdio>
#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace infera::cpu {

namespace {

#if defined(__x86_64__)
bool cpuid(unsigned leaf, unsigned sub, unsigned r[4]) { return __get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]); }

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux hands out AMX tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE 18).
bool request_amx_permission() {
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned r[4] = {0, 0, 0, 0};
  if (!cpuid(1, 0, r)) return f;
  const bool osxsave = (r[2] >> 27) & 1;
  f.fma = (r[2] >> 12) & 1;
  f.f16c = (r[2] >> 29) & 1;
  if (!osxsave) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xE6) == 0xE6;
  const bool tile_os = (xcr0 & 0x60000) == 0x60000;
  unsigned s[4] = {0, 0, 0, 0};
  if (!cpuid(7, 0, s)) return f;
  const unsigned ebx = s[1], ecx = s[2], edx = s[3];
  f.avx2 = ymm_os && ((ebx >> 5) & 1);
  if (!ymm_os) f.fma = f.f16c = false;
  f.avx512f = zmm_os && ((ebx >> 16) & 1);
  f.avx512bw = f.avx512f && ((ebx >> 30) & 1);
  f.avx512vl = f.avx512f && ((ebx >> 31) & 1);
  f.avx512vnni = f.avx512f && ((ecx >> 11) & 1);
  unsigned s1[4] = {0, 0, 0, 0};
  if (cpuid(7, 1, s1)) f.avx512bf16 = f.avx512f && ((s1[0] >> 5) & 1);
  const bool tile = tile_os && ((edx >> 24) & 1);
  if (tile && request_amx_permission()) {
    f.amx_tile = true;
    f.amx_int8 = (edx >> 25) & 1;
    f.amx_bf16 = (edx >> 22) & 1;
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return avx2;
    case Isa::kAvx512: return avx512;
    case Isa::kAmx: return avx512 && f.amx_tile && f.amx_int8;
  }
  return false;
}

Isa best_isa() {
  for (Isa i : {Isa::kAmx, Isa::kAvx512, Isa::kAvx2})
    if (isa_supported(i)) return i;
  return Isa::kScalar;
}

Isa default_isa() {
  Isa best = best_isa();
  const char* env = std::getenv("INFERA_CPU_ISA");
  if (!env || !*env) return best;
  const auto want = parse_isa(env);
  if (!want) {
    std::fprintf(stderr, "warning: INFERA_CPU_ISA=%s is not one of scalar, avx2, avx512, amx; using %s\n", env,
                 std::string(isa_name(best)).c_str());
    return best;
  }
  return static_cast<int>(*want) < static_cast<int>(best) ? *want : best;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx})
    if (name == isa_name(i)) return i;
  return std::nullopt;
}

std::string feature_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.amx_int8, "amx-int8");
  add(f.amx_bf16, "amx-bf16");
  return s.empty() ? "none" : s;
}

}  // namespace infera::cpu
