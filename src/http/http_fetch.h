// A blocking HTTP/1.1 client for short calls from worker threads (health checks, node agents):
// one request, one connection, an overall deadline. Not for use on an io_context thread.
#pragma once

#include <chrono>
#include <string>

#include "base/status.h"
#include "http/http_server.h"

namespace infera::http {

struct FetchResult {
  int status = 0;
  std::string body;
  Headers headers;
};

// Errors read like "connection refused" or "timed out after 120 s".
Result<FetchResult> fetch(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
                          const Headers& headers, const std::string& body, std::chrono::milliseconds timeout);

// Parses "http://host:port/base" into its parts; false when not an http:// URL.
bool parse_http_url(const std::string& url, std::string* host, uint16_t* port, std::string* base_path);

}  // namespace infera::http
