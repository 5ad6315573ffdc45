// Minimal HTTP/1.1 server over Boost.Beast with C++20 coroutines: keep-alive, header/body limits,
// header and idle timeouts, and streamed (SSE) responses. One io_context runs on a few threads;
// handlers are coroutines and must not block (model work goes to the engine thread).
//
//   HttpServer s(io, {.port = 8000}, [&](HttpRequest& req, HttpResponder& out) -> net::awaitable<void> {
//     co_await out.send(200, "application/json", "{}");
//   });
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace infera::http {

namespace net = boost::asio;
namespace beast = boost::beast;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path without the query string
  std::string query;   // after '?', undecoded ("" if none)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Writes the response of one request: either send() once, or begin_stream() then write() chunks
// and end_stream(). write() returns false once the client is gone (the request should stop).
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual net::awaitable<void> send(int status, const std::string& content_type, std::string body) = 0;
  // The same with any headers (Content-Type among them); CORS and Server are added unless present.
  virtual net::awaitable<void> send(int status, const Headers& headers, std::string body) = 0;
  virtual net::awaitable<bool> begin_stream(const std::string& content_type) = 0;
  // A chunked response with this status and these headers.
  virtual net::awaitable<bool> begin_stream(int status, const Headers& headers) = 0;
  virtual net::awaitable<bool> write(const std::string& data) = 0;
  virtual net::awaitable<void> end_stream() = 0;
  // True once the peer has closed its side (checked by long non-streaming handlers).
  virtual bool peer_closed() const = 0;
  // True once a status line went out (send() or begin_stream()).
  virtual bool started() const = 0;
};

using Handler = std::function<net::awaitable<void>(HttpRequest&, HttpResponder&)>;

struct HttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0: any free port (see HttpServer::port())
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 16 * 1024 * 1024;
  std::chrono::seconds header_timeout{10};  // whole request head + body must arrive within this
  std::chrono::seconds idle_timeout{60};    // keep-alive connection with no request
  // Body of the server's own error replies (400 malformed, 413, 431); default: OpenAI error shape.
  // `req` holds what was read of the request (a 413's method, target and headers; else empty).
  std::function<std::string(int status, const std::string& message, const HttpRequest& req)> error_body;
};

class HttpServer {
 public:
  HttpServer(net::io_context& io, HttpOptions options, Handler handler);
  // Binds the port (so nothing else takes it) without accepting yet.
  Status bind();
  // Starts accepting connections.
  void start();
  // Stops accepting; open connections finish their current request.
  void stop();
  uint16_t port() const { return port_; }

 private:
  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(net::ip::tcp::socket socket);

  net::io_context& io_;
  HttpOptions opt_;
  Handler handler_;
  net::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

}  // namespace infera::http
