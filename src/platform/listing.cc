#include "platform/listing.h"

#include <algorithm>

namespace infera::platform {

std::string encode_cursor(int64_t offset) { return base58_encode("o:" + std::to_string(offset)); }

int64_t decode_cursor(const std::string& cursor) {
  // Cursors are base58("o:<offset>"): decode by trying the small offsets space is not needed; parse directly.
  static constexpr std::string_view kAlphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  std::vector<uint8_t> bytes;  // little-endian base 256
  for (char ch : cursor) {
    size_t v = kAlphabet.find(ch);
    if (v == std::string_view::npos || cursor.size() > 40) return -1;
    int carry = static_cast<int>(v);
    for (auto& b : bytes) {
      carry += b * 58;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  std::string s(bytes.rbegin(), bytes.rend());
  if (s.size() < 3 || s.substr(0, 2) != "o:") return -1;
  int64_t off = 0;
  for (char ch : s.substr(2)) {
    if (ch < '0' || ch > '9' || off > 1'000'000'000) return -1;
    off = off * 10 + (ch - '0');
  }
  return off;
}

json paginate(std::vector<json> items, const ListQuery& q, const char* key) {
  if (!q.ascending) std::reverse(items.begin(), items.end());
  const int64_t total = static_cast<int64_t>(items.size());
  int64_t offset = 0;
  if (q.cursor) offset = std::max<int64_t>(0, decode_cursor(*q.cursor));
  offset = std::min(offset, total);
  const int64_t end = std::min<int64_t>(total, offset + q.limit);
  json page = json::array();
  for (int64_t i = offset; i < end; ++i) page.push_back(std::move(items[static_cast<size_t>(i)]));
  json next = end < total ? json(encode_cursor(end)) : json(nullptr);
  json prev = offset > 0 ? json(encode_cursor(std::max<int64_t>(0, offset - q.limit))) : json(nullptr);
  return json{{key, std::move(page)}, {"pagination", {{"cursor_next", next}, {"cursor_prev", prev}, {"total_items", total}}}};
}

}  // namespace infera::platform
