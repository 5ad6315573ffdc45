#include "cli_util.h"

#include <charconv>
#include <cstdio>

namespace infera::cli {

Result<std::vector<int32_t>> parse_token_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == ',' || text[i] == '\t' || text[i] == '\n') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != ',' && text[j] != '\t' && text[j] != '\n') ++j;
    int32_t v = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + j, v);
    if (ec != std::errc() || p != text.data() + j || v < 0)
      return error("--token-ids: '{}' is not a token id (a non-negative integer)", text.substr(i, j - i));
    ids.push_back(v);
    i = j;
  }
  if (ids.empty()) return error("--token-ids: no token ids given");
  return ids;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "infera: %s\n", message.c_str());
  return 1;
}

}  // namespace infera::cli
