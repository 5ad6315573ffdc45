#include "platform/gateway.h"

#include <boost/asio/experimental/as_tuple.hpp>

#include <fmt/format.h>

namespace infera::platform {

namespace net = http::net;
namespace beast = http::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kTuple = net::experimental::as_tuple(net::use_awaitable);
const std::string kJsonType = "application/json";

std::string openai_error(const std::string& message, const char* type, int code) {
  nlohmann::ordered_json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = nullptr;
  e["code"] = code;
  nlohmann::ordered_json out;
  out["error"] = std::move(e);
  return out.dump();
}

const std::string kContentType = "Content-Type";
const std::string kRetryAfter = "Retry-After";
const std::string kTenSeconds = "10";

// Built outside co_await expressions (GCC 12 mis-compiles initializer lists inside them).
http::Headers json_headers() { return {{kContentType, kJsonType}}; }

bool hop_by_hop(std::string_view k) {
  for (const char* h : {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
                        "proxy-connection", "content-length", "host"})
    if (beast::iequals(k, h)) return true;
  return false;
}

}  // namespace

// proxy()'s result when the replica accepted the request and closed without answering.
constexpr int kClosedWithoutAnswer = -2;
// proxy()'s result when the client went away before the answer started (nothing more to send).
constexpr int kClientGone = -3;

net::awaitable<int> Gateway::proxy(http::HttpRequest& req, http::HttpResponder& out, const Upstream& u,
                                   const std::string& target) {
  auto ex = co_await net::this_coro::executor;
  beast::tcp_stream up(ex);
  boost::system::error_code ec;
  auto addr = net::ip::make_address(u.host == "localhost" ? "127.0.0.1" : u.host, ec);
  if (ec) co_return -1;
  up.expires_after(std::chrono::seconds(5));
  auto [cec] = co_await up.async_connect(tcp::endpoint(addr, u.port), kTuple);
  if (cec) co_return -1;
  up.socket().set_option(tcp::no_delay(true), ec);
  // The client's disconnect closes the upstream at once, so the replica aborts the generation:
  // watched from the moment the request goes out (a non-streaming answer sends nothing until done).
  struct Watch {
    bool done = false, client_gone = false;
  };
  auto watch = std::make_shared<Watch>();
  struct EndWatch {
    std::shared_ptr<Watch> w;
    ~EndWatch() { w->done = true; }
  } end_watch{watch};
  net::co_spawn(
      ex,
      [&out, &up, watch]() -> net::awaitable<void> {
        net::steady_timer t(co_await net::this_coro::executor);
        while (!watch->done) {
          t.expires_after(std::chrono::milliseconds(200));
          co_await t.async_wait(net::use_awaitable);
          if (watch->done) co_return;
          if (out.peer_closed()) {
            watch->client_gone = true;
            boost::system::error_code e;
            up.socket().shutdown(tcp::socket::shutdown_both, e);
            up.socket().close(e);
            co_return;
          }
        }
      },
      net::detached);
  bhttp::request<bhttp::string_body> r{bhttp::string_to_verb(req.method), target, 11};
  for (const auto& [k, v] : req.headers)
    if (!hop_by_hop(k)) r.set(k, v);
  r.set(bhttp::field::host, fmt::format("{}:{}", u.host, u.port));
  r.set("X-Forwarded-Proto", "http");
  if (req.header("x-forwarded-host").empty() && !req.header("host").empty()) r.set("X-Forwarded-Host", req.header("host"));
  if (req.header("x-request-id").empty()) r.set("X-Request-Id", random_base62(16));
  r.body() = req.body;
  r.prepare_payload();
  r.keep_alive(false);
  up.expires_after(std::chrono::minutes(30));  // read-idle limit: a reasoning answer may be silent for minutes
  auto [wec, wn] = co_await bhttp::async_write(up, r, kTuple);
  if (watch->client_gone) co_return kClientGone;
  if (wec) co_return -1;
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::buffer_body> p;
  p.body_limit(boost::none);
  auto [hec, hn] = co_await bhttp::async_read_header(up, buf, p, kTuple);
  if (watch->client_gone) co_return kClientGone;
  if (hec) co_return kClosedWithoutAnswer;  // nothing sent to the client yet: handle() may try another replica
  const int status = static_cast<int>(p.get().result_int());
  http::Headers headers;
  for (const auto& f : p.get())
    if (!hop_by_hop(f.name_string())) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  headers.emplace_back("X-Accel-Buffering", "no");
  if (!co_await out.begin_stream(status, headers)) co_return status;
  std::string chunk(16384, '\0');
  while (!p.is_done()) {
    p.get().body().data = chunk.data();
    p.get().body().size = chunk.size();
    auto [rec, rn] = co_await bhttp::async_read_some(up, buf, p, kTuple);
    if (rec == bhttp::error::need_buffer) rec = {};
    if (rec) break;
    const size_t got = chunk.size() - p.get().body().size;
    if (got > 0 && !co_await out.write(chunk.substr(0, got))) break;
  }
  watch->done = true;
  co_await out.end_stream();
  boost::system::error_code e;
  up.socket().close(e);
  co_return status;
}

net::awaitable<void> Gateway::handle(http::HttpRequest& req, http::HttpResponder& out, const std::string& label,
                                     const std::string& target) {
  const auto t0 = std::chrono::steady_clock::now();
  auto route = cp_.resolve_label(label);
  if (!route) {
    const http::Headers h = json_headers();
    std::string body = openai_error("No endpoint at this address.", "NotFoundError", 404);
    co_await out.send(404, h, std::move(body));
    co_return;
  }
  std::string owner;
  if (!route->deployment.empty() && cp_.endpoint_auth_required(route->deployment, &owner)) {
    auto who = cp_.authenticate(req.header("authorization"));
    if (!who || (who->account != owner && !who->admin)) {
      const http::Headers h = json_headers();
      std::string body = openai_error("This endpoint needs an API key of the deployment's owner.", "AuthenticationError", 401);
      co_await out.send(401, h, std::move(body));
      co_return;
    }
  }
  std::vector<Upstream> ups = cp_.upstreams(*route);
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(ups, [&](const Upstream& u) {
    auto it = offline_until_.find(u.job);
    return it != offline_until_.end() && it->second > now;
  });
  int status = 0;
  for (int attempt = 0; attempt < 2 && !ups.empty(); ++attempt) {
    // Fewest in-flight requests; ties go round-robin.
    size_t best = 0;
    int best_n = INT32_MAX;
    const size_t start = static_cast<size_t>(round_robin_++ % ups.size());
    for (size_t k = 0; k < ups.size(); ++k) {
      const size_t i = (start + k) % ups.size();
      const int n = inflight_[ups[i].job];
      if (n < best_n) {
        best_n = n;
        best = i;
      }
    }
    Upstream u = ups[best];
    ++inflight_[u.job];
    status = co_await proxy(req, out, u, target);
    if (--inflight_[u.job] <= 0) inflight_.erase(u.job);
    if (status >= 0) break;
    if (status == kClientGone) {
      status = 499;  // client closed the request (counted, nothing sent)
      break;
    }
    // Refused, or accepted and closed without a byte of answer (a replica killed a moment ago):
    // the request is sent to another replica, this one is skipped for 10 s.
    offline_until_[u.job] = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    ups.erase(ups.begin() + static_cast<std::ptrdiff_t>(best));
  }
  if (status == kClosedWithoutAnswer) {
    status = 502;
    const http::Headers h = json_headers();
    std::string body = openai_error("The replica closed the connection without answering.", "BadGatewayError", 502);
    co_await out.send(502, h, std::move(body));
  } else if (status <= 0) {
    bool starting = false;
    std::string msg = route->deployment.empty() ? "" : cp_.not_ready_message(route->deployment, &starting);
    if (msg.empty()) {
      status = 404;
      const http::Headers h = json_headers();
      std::string body = openai_error("No endpoint at this address.", "NotFoundError", 404);
      co_await out.send(404, h, std::move(body));
    } else {
      status = 503;
      http::Headers h = json_headers();
      if (starting) h.emplace_back(kRetryAfter, kTenSeconds);  // it will serve soon; a stopped one will not
      std::string body = openai_error(msg, "ServiceUnavailableError", 503);
      co_await out.send(503, h, std::move(body));
    }
  }
  ++requests_[{route->deployment, status}];
  latency_sum_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++latency_count_;
}

std::string Gateway::metrics() const {
  std::string out = "# HELP gateway_requests_total Requests through the endpoint gateway.\n# TYPE gateway_requests_total counter\n";
  for (const auto& [k, n] : requests_)
    out += fmt::format("gateway_requests_total{{deployment=\"{}\",code=\"{}\"}} {}\n", k.first, k.second, n);
  out += "# HELP gateway_upstream_latency_seconds Time from request to the end of the proxied response.\n"
         "# TYPE gateway_upstream_latency_seconds summary\n";
  out += fmt::format("gateway_upstream_latency_seconds_sum {}\ngateway_upstream_latency_seconds_count {}\n", latency_sum_s_,
                     latency_count_);
  return out;
}

}  // namespace infera::platform
