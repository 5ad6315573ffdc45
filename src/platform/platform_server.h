// `infera platform`'s HTTP side: the REST API under /api (spec platform.md §8), the SSE change
// streams, health and metrics, and the reconciler timer. One io_context thread runs all of it, so
// the ControlPlane is only ever touched from that thread.
#pragma once

#include <memory>
#include <string>

#include "http/http_server.h"
#include "platform/control_plane.h"

namespace infera::platform {

struct PlatformServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  bool auth_none = false;                  // every request acts as the admin (local use only)
  std::chrono::milliseconds tick_interval{1000};
  std::chrono::seconds keep_alive{25};     // SSE comment interval
  std::string endpoint_domain;             // requests for <label>.<domain> go to the gateway
};

class PlatformServer {
 public:
  PlatformServer(http::net::io_context& io, ControlPlane& cp, PlatformServerOptions opt);
  ~PlatformServer();
  Status start();  // binds, accepts, starts the reconciler
  void stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace infera::platform
