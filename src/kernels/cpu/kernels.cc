#include "kernels/cpu/kernels.h"

#include <array>
#include <mutex>

#include "base/check.h"

namespace infera::cpu {

const Kernels& kernels_for(Isa isa) {
  CHECK(isa_supported(isa));
  static std::array<Kernels, 4> tables;
  static std::once_flag once;
  std::call_once(once, [] {
    fill_scalar_kernels(tables[0]);
    if (isa_supported(Isa::kAvx2)) fill_avx2_kernels(tables[1]);
    if (isa_supported(Isa::kAvx512)) fill_avx512_kernels(tables[2]);
    if (isa_supported(Isa::kAmx)) fill_amx_kernels(tables[3]);
  });
  return tables[static_cast<size_t>(isa)];
}

}  // namespace infera::cpu
