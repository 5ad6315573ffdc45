// The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count),
// read without parsing. Request bodies nested past a limit are refused before nlohmann's recursive
// copies, dumps and conversions could run out of stack on them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace infera {

// Request bodies of both HTTP servers: deeper than this is a 400.
inline constexpr size_t kMaxRequestJsonDepth = 512;

inline size_t json_nesting_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace infera
