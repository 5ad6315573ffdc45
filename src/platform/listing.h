// Pagination of list routes (§8): opaque cursor, limit in {10, 20, 50, 100}, sort order.
#pragma once

#include <string>
#include <vector>

#include "platform/control_plane.h"

namespace infera::platform {

// `items` in ascending creation order; returns {"<key>": page, "pagination": {...}}.
json paginate(std::vector<json> items, const ListQuery& q, const char* key);
std::string encode_cursor(int64_t offset);
// -1 when malformed.
int64_t decode_cursor(const std::string& cursor);

}  // namespace infera::platform
