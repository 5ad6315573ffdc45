#include "http/http_fetch.h"

#include <fmt/format.h>

namespace infera::http {

namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

Result<FetchResult> fetch(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
                          const Headers& headers, const std::string& body, std::chrono::milliseconds timeout) {
  net::io_context io;
  beast::tcp_stream stream(io);
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return error("cannot resolve {}: {}", host, ec.message());
  std::optional<Result<FetchResult>> out;
  auto fail = [&](const char* what, boost::system::error_code e) {
    if (out) return;
    if (e == beast::error::timeout)
      out = Result<FetchResult>(error("timed out after {:.0f} s", std::chrono::duration<double>(timeout).count()));
    else
      out = Result<FetchResult>(error("{}", e == net::error::connection_refused ? std::string("connection refused")
                                                                                 : fmt::format("{}: {}", what, e.message())));
  };
  auto req = std::make_shared<bhttp::request<bhttp::string_body>>(bhttp::string_to_verb(method), target, 11);
  req->set(bhttp::field::host, fmt::format("{}:{}", host, port));
  req->set(bhttp::field::user_agent, "infera");
  for (const auto& [k, v] : headers) req->set(k, v);
  req->body() = body;
  req->prepare_payload();
  beast::flat_buffer buf;
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
  stream.expires_after(timeout);
  stream.async_connect(results, [&](boost::system::error_code e, const tcp::endpoint&) {
    if (e) return fail("connect", e);
    bhttp::async_write(stream, *req, [&](boost::system::error_code e2, size_t) {
      if (e2) return fail("write", e2);
      bhttp::async_read(stream, buf, *res, [&](boost::system::error_code e3, size_t) {
        if (e3) return fail("read", e3);
        FetchResult r;
        r.status = static_cast<int>(res->result_int());
        r.body = std::move(res->body());
        for (const auto& f : *res) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        out = std::move(r);
      });
    });
  });
  io.run();
  stream.socket().close(ec);
  if (!out) return error("no response");
  return std::move(*out);
}

bool parse_http_url(const std::string& url, std::string* host, uint16_t* port, std::string* base_path) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  auto slash = rest.find('/');
  std::string hp = rest.substr(0, slash);
  *base_path = slash == std::string::npos ? "" : rest.substr(slash);
  auto colon = hp.rfind(':');
  if (colon == std::string::npos) {
    *host = hp;
    *port = 80;
  } else {
    *host = hp.substr(0, colon);
    int p = std::atoi(hp.c_str() + colon + 1);
    if (p <= 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  }
  return !host->empty();
}

}  // namespace infera::http
