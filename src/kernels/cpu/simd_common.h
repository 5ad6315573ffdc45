// Small scalar helpers shared by the kernel translation units (inline, no ISA-specific code).
#pragma once

#include <cstdint>

namespace infera::cpu {

// The 8 6-bit scales and mins of a Q4_K / Q5_K super-block (its 12 packed scale bytes).
inline void k_scales_mins(const uint8_t s[12], int sc[8], int mn[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

}  // namespace infera::cpu
