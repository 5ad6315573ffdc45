// HTTP client of the platform's REST API for the CLI (libcurl). Resolves the platform URL and API
// key from flags, then INFERA_PLATFORM_URL / INFERA_API_KEY, then the file `infera login` writes.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera::cli {

struct PlatformTarget {
  std::string url;      // "http://127.0.0.1:8080"
  std::string api_key;  // "inf_..." or ""
};

struct ApiResponse {
  long status = 0;
  nlohmann::json body;  // parsed JSON, or a string holding the raw text
};

// Fills what the flags left empty from the environment and the credentials file.
PlatformTarget resolve_target(PlatformTarget flags);
std::string credentials_path();

// One request; `body` is sent as JSON when not null. Transport failures are errors; HTTP error
// statuses are returned for the caller to map.
Result<ApiResponse> call_api(const PlatformTarget& t, const std::string& method, const std::string& path,
                             const nlohmann::json& body = nullptr);

// Follows an SSE route until it ends or `on_event` returns false. `on_event(id, event, data)`.
Status follow_sse(const PlatformTarget& t, const std::string& path,
                  const std::function<bool(const std::string&, const std::string&, const std::string&)>& on_event);

// Exit code of the CLI for an HTTP status: 0 ok, 1 error, 3 not found, 4 wrong state, 5 credits.
int exit_code_for(long status);

}  // namespace infera::cli
