// The endpoint gateway (spec platform.md §11): stable deployment URLs proxied to READY replicas
// (fewest in-flight requests, ties round-robin), streamed both ways without buffering, one retry
// on another replica when a connection fails before any byte went out, OpenAI-shaped 503/404
// answers when nothing can serve. Runs on the platform's io_context thread.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "http/http_server.h"
#include "platform/control_plane.h"

namespace infera::platform {

class Gateway {
 public:
  explicit Gateway(ControlPlane& cp) : cp_(cp) {}
  // `label` from the URL; `target` is what the replica gets (path and query, starting with '/').
  http::net::awaitable<void> handle(http::HttpRequest& req, http::HttpResponder& out, const std::string& label,
                                    const std::string& target);
  // Prometheus lines: gateway_requests_total{deployment,code}, gateway_upstream_latency_seconds.
  std::string metrics() const;

 private:
  // The upstream's status once its answer began; -1: the connection failed, -2: the replica closed
  // it without a byte of answer. Nothing was sent to the client in either case (safe to retry
  // elsewhere).
  http::net::awaitable<int> proxy(http::HttpRequest& req, http::HttpResponder& out, const Upstream& up,
                                  const std::string& target);

  ControlPlane& cp_;
  std::map<std::string, int> inflight_;  // job -> requests in flight
  std::map<std::string, std::chrono::steady_clock::time_point> offline_until_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (deployment, status) -> count
  double latency_sum_s_ = 0;
  int64_t latency_count_ = 0;
  uint64_t round_robin_ = 0;
};

}  // namespace infera::platform
