// Helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace infera::cli {

// "1 2 3" or "1,2,3" -> ids; an empty list or a non-integer is an error.
Result<std::vector<int32_t>> parse_token_ids(const std::string& text);

// Prints "infera: <message>" on stderr and returns the exit code for failures (1).
int fail(const std::string& message);

}  // namespace infera::cli
