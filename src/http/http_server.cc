#include "http/http_server.h"

#include <sys/socket.h>

#include <cerrno>

#include <array>

#include <boost/asio/experimental/as_tuple.hpp>

namespace infera::http {

namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
constexpr auto kTuple = net::experimental::as_tuple(net::use_awaitable);

namespace {

const char* kCors[][2] = {{"access-control-allow-origin", "*"},
                          {"access-control-allow-methods", "*"},
                          {"access-control-allow-headers", "*"}};

const std::string kContentType = "Content-Type";

template <typename Res>
void set_headers(Res& res, const Headers& headers) {
  bool server = false, cors = false;
  for (const auto& [k, v] : headers) {
    res.insert(k, v);
    server = server || beast::iequals(k, "server");
    cors = cors || beast::iequals(k, "access-control-allow-origin");
  }
  if (!server) res.set(bhttp::field::server, "infera");
  if (!cors)
    for (auto& h : kCors) res.set(h[0], h[1]);
}

class Responder final : public HttpResponder {
 public:
  Responder(beast::tcp_stream& s, unsigned version, bool keep_alive)
      : s_(s), version_(version), keep_alive_(keep_alive) {}

  net::awaitable<void> send(int status, const Headers& headers, std::string body) override {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), version_};
    set_headers(res, headers);
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    s_.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await bhttp::async_write(s_, res, kTuple);
    failed_ = failed_ || ec;
    done_ = true;
  }

  net::awaitable<bool> begin_stream(int status, const Headers& headers) override {
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(status), version_};
    set_headers(res, headers);
    res.keep_alive(keep_alive_);
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    s_.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await bhttp::async_write_header(s_, sr, kTuple);
    streaming_ = true;
    failed_ = failed_ || ec;
    co_return !failed_;
  }

  // The content-type forms are the header forms with one header (built outside co_await: GCC 12
  // mis-compiles initializer lists inside it).
  net::awaitable<void> send(int status, const std::string& content_type, std::string body) override {
    Headers h;
    if (!content_type.empty()) h.emplace_back(kContentType, content_type);
    co_await send(status, h, std::move(body));
  }

  net::awaitable<bool> begin_stream(const std::string& content_type) override {
    Headers h;
    h.emplace_back(kContentType, content_type);
    co_return co_await begin_stream(200, h);
  }

  net::awaitable<bool> write(const std::string& data) override {
    if (failed_) co_return false;
    s_.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await net::async_write(s_, bhttp::make_chunk(net::buffer(data)), kTuple);
    failed_ = failed_ || ec;
    co_return !failed_;
  }

  net::awaitable<void> end_stream() override {
    if (!failed_) {
      s_.expires_after(std::chrono::seconds(60));
      auto [ec, n] = co_await net::async_write(s_, bhttp::make_chunk_last(), kTuple);
      failed_ = failed_ || ec;
    }
    done_ = true;
  }

  bool peer_closed() const override {
    if (failed_) return true;
    char c;
    const ssize_t r = ::recv(const_cast<beast::tcp_stream&>(s_).socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0) return true;  // orderly shutdown by the peer
    return r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset
  }

  bool started() const override { return streaming_ || done_; }
  bool done() const { return done_; }
  bool failed() const { return failed_; }

 private:
  beast::tcp_stream& s_;
  unsigned version_;
  bool keep_alive_;
  bool streaming_ = false, done_ = false, failed_ = false;
};

const std::string kJson = "application/json";  // not a literal inside co_await (GCC 12 bug)

std::string error_json(const std::string& message, const char* type, int code) {
  std::string m;
  for (char c : message) {
    if (c == '"' || c == '\\') m += '\\';
    m += c;
  }
  return "{\"object\":\"error\",\"message\":\"" + m + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":" +
         std::to_string(code) + "}";
}

}  // namespace

HttpServer::HttpServer(net::io_context& io, HttpOptions options, Handler handler)
    : io_(io), opt_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

Status HttpServer::bind() {
  boost::system::error_code ec;
  const auto addr = net::ip::make_address(opt_.host, ec);
  if (ec) return error("--host '{}' is not an IP address: {}", opt_.host, ec.message());
  const tcp::endpoint ep(addr, opt_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (ec) return error("cannot bind {}:{}: {}", opt_.host, opt_.port, ec.message());
  port_ = acceptor_.local_endpoint().port();
  return Status::ok();
}

void HttpServer::start() {
  acceptor_.listen(net::socket_base::max_listen_connections);
  net::co_spawn(io_, accept_loop(), net::detached);
}

void HttpServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

net::awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
      continue;
    }
    boost::system::error_code nd;
    socket.set_option(tcp::no_delay(true), nd);  // streamed tokens go out at once
    net::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), net::detached);
  }
}

net::awaitable<void> HttpServer::serve(tcp::socket socket) {
  auto own_error = [this](int status, const std::string& message, const HttpRequest& req) {
    if (opt_.error_body) return opt_.error_body(status, message, req);
    return error_json(message, "BadRequestError", status);
  };
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  bool first = true;
  // The request line and headers of a message (the body is the caller's).
  auto head_of = [](const auto& msg) {
    HttpRequest req;
    req.method = std::string(msg.method_string());
    std::string target(msg.target());
    const size_t qmark = target.find('?');
    req.target = target.substr(0, qmark);
    if (qmark != std::string::npos) req.query = target.substr(qmark + 1);
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(f.value());
    }
    return req;
  };
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opt_.max_header_bytes));
    parser.body_limit(opt_.max_body_bytes);
    // Waiting for a request: the idle timeout; once it starts, all of it within the header timeout.
    stream.expires_after(first ? opt_.header_timeout : opt_.idle_timeout);
    auto [ec1, n1] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    if (!ec1) {
      stream.expires_after(opt_.header_timeout);
      auto [ec2, n2] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      ec1 = ec2;
    }
    first = false;
    if (ec1 == bhttp::error::body_limit || ec1 == bhttp::error::header_limit) {
      Responder r(stream, 11, false);
      const bool body = ec1 == bhttp::error::body_limit;
      const HttpRequest head = body ? head_of(parser.get()) : HttpRequest{};
      co_await r.send(body ? 413 : 431, kJson,
                      own_error(body ? 413 : 431, body ? "Request body too large" : "Request header fields too large", head));
      // Lingering close: stop sending, then read and drop what the client is still sending for a
      // moment, so that the close does not reset the connection before the client reads the reply.
      boost::system::error_code sec;
      stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      stream.expires_after(std::chrono::seconds(2));
      std::array<char, 65536> sink;
      for (;;) {
        auto [rec, rn] = co_await stream.async_read_some(net::buffer(sink), kTuple);
        if (rec) break;
      }
      co_return;
    }
    if (ec1) {
      if (ec1 != bhttp::error::end_of_stream && ec1 != beast::error::timeout && ec1 != net::error::eof &&
          ec1 != net::error::connection_reset) {
        Responder r(stream, 11, false);
        const HttpRequest none;
        co_await r.send(400, kJson, own_error(400, "Malformed HTTP request", none));
      }
      break;
    }
    auto& msg = parser.get();
    HttpRequest req = head_of(msg);
    req.body = std::move(msg.body());
    const bool keep_alive = msg.keep_alive();
    Responder r(stream, msg.version(), keep_alive);
    co_await handler_(req, r);
    if (!r.done() || r.failed() || !keep_alive) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace infera::http
