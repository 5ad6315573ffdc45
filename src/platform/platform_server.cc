#include "platform/platform_server.h"

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "base/json_depth.h"
#include "platform/gateway.h"
#include "platform/listing.h"
#include "platform/node_protocol.h"

namespace infera::platform {

namespace net = http::net;
using http::HttpRequest;
using http::HttpResponder;

// Every file under web/ (the dashboard): path relative to it -> bytes (cmake/embed_files.cmake).
const std::vector<std::pair<std::string_view, std::string_view>>& embedded_web_files();

namespace {

const std::string kJsonType = "application/json";
const std::string kSseType = "text/event-stream";
const std::string kTextType = "text/plain; version=0.0.4";
// Named, not literals: GCC 12 mis-compiles literals converted inside co_await expressions.
const std::string kSseConnected = ": connected\n\n";
const std::string kSseKeepAlive = ": keep-alive\n\n";
constexpr size_t kMaxApiBodyBytes = 1 << 20;       // REST API
constexpr size_t kMaxBodyBytes = 10 << 20;         // gateway (§11.2)

std::string error_body(const std::string& message) { return json{{"error", message}}.dump(); }

// A JSON parse error without the library's "[json.exception.parse_error.101] " prefix.
std::string parse_error_text(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0 && m.find("] ") != std::string::npos) m = m.substr(m.find("] ") + 2);
  return m;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < q.size()) {
    size_t amp = q.find('&', pos);
    if (amp == std::string::npos) amp = q.size();
    std::string_view part(q.data() + pos, amp - pos);
    size_t eq = part.find('=');
    if (!part.empty()) out[url_decode(part.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(part.substr(eq + 1));
    pos = amp + 1;
  }
  return out;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    if (slash > pos) out.push_back(url_decode(std::string_view(path).substr(pos, slash - pos)));
    pos = slash + 1;
  }
  return out;
}

// A route's reply before it goes on the wire.
struct Answer {
  int status = 200;
  std::string body;
  std::string type = kJsonType;
};

template <typename T>
Answer from(Reply<T> r) {
  if (!r.ok()) return Answer{r.error().status, error_body(r.error().message)};
  return Answer{200, json(*r).dump()};
}

}  // namespace

struct PlatformServer::Impl {
  Impl(net::io_context& io, ControlPlane& cp, PlatformServerOptions o)
      : io(io), cp(cp), opt(std::move(o)), timer(io), gateway(cp), server(io, make_http_options(opt), [this](HttpRequest& r, HttpResponder& w) {
          return handle(r, w);
        }) {}

  static http::HttpOptions make_http_options(const PlatformServerOptions& o) {
    http::HttpOptions h;
    h.host = o.host;
    h.port = o.port;
    h.max_body_bytes = kMaxBodyBytes;
    h.idle_timeout = std::chrono::seconds(120);
    // Endpoint URLs answer in the OpenAI error shape, the REST API in its own.
    h.error_body = [domain = o.endpoint_domain](int status, const std::string& m, const HttpRequest& req) {
      if (!gateway_target_for(req, domain)) return error_body(m);
      const char* type = status == 413 ? "PayloadTooLargeError" : "BadRequestError";
      return json{{"error", {{"message", m}, {"type", type}, {"param", nullptr}, {"code", status}}}}.dump();
    };
    return h;
  }

  net::awaitable<void> reconcile_loop() {
    for (;;) {
      timer.expires_after(opt.tick_interval);
      boost::system::error_code ec;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (ec || stopped) co_return;
      try {
        cp.tick();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "infera platform: reconciler: %s\n", e.what());
      }
    }
  }

  // Parses the query of a list route; an error answer when malformed.
  std::optional<Answer> list_query(const std::map<std::string, std::string>& q, ListQuery& out) {
    for (const auto& [k, v] : q) out.filters[k] = v;
    if (auto it = q.find("limit"); it != q.end()) {
      if (it->second != "10" && it->second != "20" && it->second != "50" && it->second != "100")
        return Answer{400, error_body("limit: expected one of 10, 20, 50, 100")};
      out.limit = std::stoi(it->second);
    }
    if (auto it = q.find("sort_order"); it != q.end()) {
      if (it->second != "asc" && it->second != "desc") return Answer{400, error_body("sort_order: expected asc or desc")};
      out.ascending = it->second == "asc";
    }
    if (auto it = q.find("cursor"); it != q.end() && !it->second.empty()) {
      if (decode_cursor(it->second) < 0) return Answer{400, error_body("cursor: malformed")};
      out.cursor = it->second;
    }
    return std::nullopt;
  }

  std::string metrics_text() {
    json s = cp.stats();
    std::string out = "# HELP platform_deployments Deployments by status.\n# TYPE platform_deployments gauge\n";
    for (const char* st : {"DRAFT", "STARTING", "RUNNING", "STOPPING", "STOPPED", "INSUFFICIENT_FUNDS", "ERROR", "ARCHIVED"})
      out += fmt::format("platform_deployments{{status=\"{}\"}} {}\n", st, s["deployments"].value(st, 0));
    out += "# HELP platform_jobs Jobs by state.\n# TYPE platform_jobs gauge\n";
    for (const char* st : {"QUEUED", "RUNNING", "COMPLETED", "STOPPED"})
      out += fmt::format("platform_jobs{{state=\"{}\"}} {}\n", st, s["jobs"].value(st, 0));
    out += "# HELP platform_nodes Nodes by status.\n# TYPE platform_nodes gauge\n";
    for (const char* st : {"ONLINE", "DRAINING", "OFFLINE"})
      out += fmt::format("platform_nodes{{status=\"{}\"}} {}\n", st, s.contains("nodes") ? s["nodes"].value(st, 0) : 0);
    return out;
  }

  // Routes that answer with one response. `seg` is the path below /api.
  Answer route(const HttpRequest& req, const std::vector<std::string>& seg, const Caller& c, const json& body,
               const std::map<std::string, std::string>& query) {
    const std::string& m = req.method;
    const size_t n = seg.size();
    auto is = [&](const char* method, std::initializer_list<const char*> pattern) {
      if (m != method || n != pattern.size()) return false;
      size_t i = 0;
      for (const char* p : pattern) {
        if (p[0] != ':' && seg[i] != p) return false;
        ++i;
      }
      return true;
    };
    ListQuery lq;
    auto list = [&](auto&& fn) -> Answer {
      if (auto bad = list_query(query, lq)) return *bad;
      return from(fn());
    };
    if (n >= 1 && seg[0] == "deployments") {
      if (is("GET", {"deployments"})) return list([&] { return cp.list_deployments(c, lq); });
      if (is("POST", {"deployments", "create"}) || is("POST", {"deployments"})) return from(cp.create_deployment(c, body));
      if (n < 2) return Answer{404, error_body("Not found")};
      const std::string& id = seg[1];
      if (is("GET", {"deployments", ":id"})) return from(cp.get_deployment(c, id));
      if (is("DELETE", {"deployments", ":id"})) {
        auto r = cp.delete_deployment(c, id);
        if (!r) return from(std::move(r));
        return Answer{204, "", ""};
      }
      if (is("POST", {"deployments", ":id", "start"})) return from(cp.start_deployment(c, id));
      if (is("POST", {"deployments", ":id", "stop"})) return from(cp.stop_deployment(c, id));
      if (is("POST", {"deployments", ":id", "archive"})) return from(cp.archive_deployment(c, id));
      if (is("PATCH", {"deployments", ":id", "update-name"})) return from(cp.update_name(c, id, body));
      if (is("PATCH", {"deployments", ":id", "update-replica-count"}) || is("PATCH", {"deployments", ":id", "update-replicas"}))
        return from(cp.update_replicas(c, id, body));
      if (is("PATCH", {"deployments", ":id", "update-timeout"})) return from(cp.update_timeout(c, id, body));
      if (is("PATCH", {"deployments", ":id", "update-schedule"})) return from(cp.update_schedule(c, id, body));
      if (is("PATCH", {"deployments", ":id", "update-active-revision"})) return from(cp.update_active_revision(c, id, body));
      if (is("POST", {"deployments", ":id", "create-revision"}) || is("POST", {"deployments", ":id", "revisions"}))
        return from(cp.create_revision(c, id, body));
      if (is("GET", {"deployments", ":id", "jobs"})) return list([&] { return cp.list_jobs(c, id, lq); });
      if (is("GET", {"deployments", ":id", "jobs", ":job"})) return from(cp.get_job_detail(c, id, seg[3]));
      if (is("POST", {"deployments", ":id", "jobs", ":job", "stop"})) return from(cp.stop_deployment_job(c, id, seg[3]));
      if (is("GET", {"deployments", ":id", "revisions"})) return list([&] { return cp.list_revisions(c, id, lq); });
      if (is("GET", {"deployments", ":id", "events"})) return list([&] { return cp.list_events(c, id, lq); });
      if (is("GET", {"deployments", ":id", "tasks"})) return list([&] { return cp.list_tasks(c, id, lq); });
      if (is("GET", {"deployments", ":id", "logs"}) || is("GET", {"deployments", ":id", "jobs", ":job", "logs"})) {
        int64_t since = 0;
        int limit = 1000;
        if (auto it = query.find("since_seq"); it != query.end()) since = std::atoll(it->second.c_str());
        if (auto it = query.find("limit"); it != query.end()) limit = std::clamp(std::atoi(it->second.c_str()), 1, 10000);
        auto get = [&](const char* k) { auto it = query.find(k); return it == query.end() ? std::string() : it->second; };
        return from(cp.read_logs(c, id, n == 5 ? seg[3] : "", since, limit, get("op"), get("type")));
      }
      if (is("GET", {"deployments", ":id", "logs", "download"}) || is("GET", {"deployments", ":id", "jobs", ":job", "logs", "download"})) {
        const std::string job = n == 6 ? seg[3] : "";
        std::string text;
        int64_t since = 0;
        for (;;) {
          auto r = cp.read_logs(c, id, job, since, 10000, "", "");
          if (!r) return from(std::move(r));
          if ((*r)["logs"].empty()) break;
          for (const json& l : (*r)["logs"]) {
            std::string who = l["opId"].is_string() ? l["opId"].get<std::string>() + " " + l.value("stream", "") : "system";
            while (!who.empty() && who.back() == ' ') who.pop_back();
            text += fmt::format("{} [{}{}] {}\n", iso8601_ms(l["timestamp"].get<int64_t>()),
                                job.empty() ? l["job"].get<std::string>().substr(0, 8) + " " : "", who,
                                l["message"].get<std::string>());
          }
          since = (*r)["next_seq"];
        }
        return Answer{200, std::move(text), "text/plain; charset=utf-8"};
      }
    }
    if (is("POST", {"jobs", "list"})) return from(cp.post_job(c, body));
    if (is("GET", {"jobs", ":job"}) && seg[1] != "templates") return from(cp.get_job(c, seg[1]));
    if (is("POST", {"jobs", ":job", "extend"})) return from(cp.extend_job(c, seg[1], body));
    if (is("POST", {"jobs", ":job", "stop"})) return from(cp.stop_job(c, seg[1]));
    if (is("GET", {"credits", "balance"})) return from(cp.balance(c));
    if (is("GET", {"credits", "transactions"})) return list([&] { return cp.transactions(c, lq); });
    if (is("POST", {"credits", "grant"})) return from(cp.grant(c, body));
    if (is("POST", {"credits", "claim"})) return from(cp.claim(c, body));
    if (is("POST", {"credits", "codes"})) return from(cp.create_claim_code(c, body));
    if (is("GET", {"api-keys"})) return list([&] { return cp.list_api_keys(c, lq); });
    if (is("POST", {"api-keys"})) return from(cp.create_api_key(c, body));
    if (is("POST", {"api-keys", ":id", "update"})) return from(cp.update_api_key(c, seg[1], body));
    if (is("POST", {"api-keys", ":id", "delete"}) || is("DELETE", {"api-keys", ":id"}))
      return from(cp.delete_api_key(c, seg[1]));
    if (is("GET", {"nodes"})) return from(cp.list_nodes(c));
    if (is("GET", {"nodes", ":id"})) return from(cp.get_node(c, seg[1]));
    if (is("POST", {"nodes", ":id", "drain"}) && seg[1] != "join-tokens") return from(cp.drain_node(c, seg[1]));
    if (is("POST", {"nodes", "join-tokens"})) return from(cp.create_join_token(c));
    if (is("GET", {"stats"})) return Answer{200, cp.stats().dump()};
    if (is("GET", {"whoami"})) return Answer{200, json{{"account", c.account}, {"admin", c.admin}}.dump()};
    return Answer{404, error_body(fmt::format("No route {} /api/{}", m, fmt::join(seg, "/")))};
  }

  // Node agent routes (§16): a join token registers; then the node's own token.
  std::optional<Answer> node_route(const HttpRequest& req, const std::vector<std::string>& seg) {
    if (req.method != "POST" || seg.size() < 2 || seg[0] != "nodes") return std::nullopt;
    if (seg[1] == "join-tokens" || (seg.size() == 3 && seg[2] == "drain")) return std::nullopt;  // admin routes
    json body;
    if (json_nesting_depth(req.body) > kMaxRequestJsonDepth)
      return Answer{400, error_body(fmt::format("Malformed JSON body: arrays and objects nest deeper than {} levels", kMaxRequestJsonDepth))};
    try {
      body = json::parse(req.body);
    } catch (const json::parse_error& e) {
      return Answer{400, error_body(fmt::format("Malformed JSON body: {}", parse_error_text(e)))};
    }
    try {
      if (seg.size() == 2 && seg[1] == "register") {
        const std::string token = body.value("token", "");
        if (!cp.check_join_token(token)) return Answer{401, error_body("Unauthorized: unknown or expired join token")};
        std::vector<std::string> markets = body.value("markets", std::vector<std::string>{"local-cpu"});
        for (const std::string& m : markets)
          if (!cp.get_market(m)) return Answer{400, error_body(fmt::format("markets: unknown market {}", m))};
        std::string id = cp.register_node(body.value("name", "node"), markets, body.value("resources", json::object()),
                                          body.value("address", "127.0.0.1"), false, "0.1.0");
        return Answer{200, json{{"id", id}, {"node_token", cp.issue_node_token(id)}}.dump()};
      }
      const std::string& node = seg[1];
      std::string auth = req.header("authorization");
      const std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
      if (!cp.node_token_valid(node, token)) return Answer{401, error_body("Unauthorized")};
      if (seg.size() == 3 && seg[2] == "heartbeat") {
        NodeHeartbeat hb = heartbeat_from_json(body);
        hb.node = node;
        return Answer{200, to_json(cp.node_heartbeat(hb)).dump()};
      }
      if (seg.size() == 5 && seg[2] == "jobs") {
        auto j = cp.find_job(seg[3]);
        if (!j || j->node != node) return Answer{404, error_body(fmt::format("Job {} not found on this node", seg[3]))};
        if (seg[4] == "exit") {
          std::optional<int> code;
          std::optional<std::string> reason;
          if (body.contains("exit_code") && body["exit_code"].is_number_integer()) code = body["exit_code"].get<int>();
          if (body.contains("reason") && body["reason"].is_string()) reason = body["reason"].get<std::string>();
          Status s = cp.report_job_exit(seg[3], code, reason);
          if (!s) return Answer{400, error_body(s.message())};
          return Answer{200, json{{"ok", true}}.dump()};
        }
        if (seg[4] == "logs") {
          std::vector<LogRecord> recs;
          for (const json& l : body.value("logs", json::array())) recs.push_back(log_from_json(l));
          cp.append_logs(seg[3], std::move(recs));
          return Answer{200, json{{"ok", true}}.dump()};
        }
      }
    } catch (const json::exception& e) {
      return Answer{400, error_body(fmt::format("Malformed node message: {}", e.what()))};
    }
    return Answer{404, error_body("No such node route")};
  }

  // Routes that need no key.
  std::optional<Answer> public_route(const HttpRequest& req, const std::vector<std::string>& seg) {
    if (req.method != "GET") return std::nullopt;
    const size_t n = seg.size();
    if (n == 1 && seg[0] == "health") return Answer{200, json{{"status", "ok"}}.dump()};
    if (n == 1 && seg[0] == "metrics") return Answer{200, metrics_text() + gateway.metrics(), kTextType};
    if (n == 1 && seg[0] == "markets") return Answer{200, cp.list_markets().dump()};
    if (n == 2 && seg[0] == "markets") return from(cp.get_market(seg[1]));
    if (n == 3 && seg[0] == "markets" && seg[2] == "required-resources") {
      auto m = cp.get_market(seg[1]);
      if (!m) return from(std::move(m));
      return Answer{200, json{{"market", (*m)["address"]}, {"resources", json::array()}}.dump()};
    }
    // The OpenAPI description of this API and a page that shows it (both built into the binary).
    if (n == 1 && (seg[0] == "openapi.json" || seg[0] == "swagger")) {
      const bool doc = seg[0] == "openapi.json";
      for (const auto& [path, bytes] : embedded_web_files())
        if (path == (doc ? "openapi.json" : "swagger.html"))
          return Answer{200, std::string(bytes), doc ? "application/json" : "text/html; charset=utf-8"};
      return Answer{404, error_body("Not built into this binary")};
    }
    if (n == 2 && seg[0] == "jobs" && seg[1] == "templates") return Answer{200, cp.list_templates().dump()};
    if (n == 3 && seg[0] == "jobs" && seg[1] == "templates" && seg[2] == "grouped")
      return Answer{200, cp.list_template_groups().dump()};
    return std::nullopt;
  }

  net::awaitable<void> stream(HttpRequest& req, HttpResponder& out, const Caller& c, const std::string& dep) {
    // Snapshot (or resume after Last-Event-ID), then live changes; ends when the client goes.
    int64_t cursor = cp.feed().last_seq();
    std::vector<std::string> first;
    const std::string last_id = req.header("last-event-id");
    bool resumed = false;
    if (!last_id.empty()) {
      try {
        int64_t seq = std::stoll(last_id);
        if (seq <= cursor && seq >= cursor - 10000) {
          cursor = seq;
          resumed = true;
        }
      } catch (...) {
      }
    }
    if (!dep.empty()) {
      auto snap = cp.stream_snapshot(c, dep);
      if (!snap) {
        const std::string body = error_body(snap.error().message);
        co_await out.send(snap.error().status, kJsonType, body);
        co_return;
      }
      if (!resumed)
        for (const json& j : *snap) first.push_back(fmt::format("id: {}\ndata: {}\n\n", cursor, j.dump()));
    }
    if (!co_await out.begin_stream(kSseType)) co_return;
    for (const std::string& s : first)
      if (!co_await out.write(s)) co_return;
    if (!co_await out.write(kSseConnected)) co_return;
    auto last_write = std::chrono::steady_clock::now();
    net::steady_timer t(io);
    while (!stopped) {
      t.expires_after(std::chrono::milliseconds(200));
      co_await t.async_wait(net::use_awaitable);
      if (out.peer_closed()) co_return;
      for (const Change& ch : cp.feed().since(cursor, dep)) {
        cursor = ch.seq;
        if (dep.empty()) {  // account-wide stream: only the caller's deployments
          auto d = cp.find_deployment(ch.deployment);
          if (!c.admin && (!d || d->owner != c.account)) continue;
        }
        json data = ch.data;
        data["deploymentId"] = ch.deployment;
        const std::string event = fmt::format("id: {}\ndata: {}\n\n", ch.seq, data.dump());
        if (!co_await out.write(event)) co_return;
        last_write = std::chrono::steady_clock::now();
      }
      if (std::chrono::steady_clock::now() - last_write >= opt.keep_alive) {
        if (!co_await out.write(kSseKeepAlive)) co_return;
        last_write = std::chrono::steady_clock::now();
      }
    }
    co_await out.end_stream();
  }

  // The gateway's label for this request, and the target to send upstream; nullopt if not a gateway request.
  std::optional<std::pair<std::string, std::string>> gateway_target(const HttpRequest& req) {
    return gateway_target_for(req, opt.endpoint_domain);
  }
  static std::optional<std::pair<std::string, std::string>> gateway_target_for(const HttpRequest& req,
                                                                              const std::string& endpoint_domain) {
    const std::string q = req.query.empty() ? "" : "?" + req.query;
    if (!endpoint_domain.empty()) {
      std::string host = req.header("host");
      host = host.substr(0, host.rfind(':') == std::string::npos || host.find(']') != std::string::npos ? host.size() : host.rfind(':'));
      for (char& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const std::string suffix = "." + endpoint_domain;
      if (host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0)
        return std::make_pair(host.substr(0, host.size() - suffix.size()), req.target + q);
    }
    if (req.target.rfind("/e/", 0) == 0) {
      const size_t end = req.target.find('/', 3);
      std::string label = req.target.substr(3, end == std::string::npos ? std::string::npos : end - 3);
      std::string rest = end == std::string::npos ? "/" : req.target.substr(end);
      return std::make_pair(label, rest + q);
    }
    return std::nullopt;
  }

  net::awaitable<void> follow_logs(HttpRequest& req, HttpResponder& out, const Caller& c, const std::string& dep,
                                   const std::string& job, const std::map<std::string, std::string>& query) {
    // Replays from Last-Event-ID / since_seq, then streams; `event: end` once the job (or the whole
    // deployment: stopped, no job left) has ended.
    int64_t since = 0;
    if (auto it = query.find("since_seq"); it != query.end()) since = std::atoll(it->second.c_str());
    if (!req.header("last-event-id").empty()) since = std::atoll(req.header("last-event-id").c_str());
    auto first = cp.read_logs(c, dep, job, job.empty() ? 0 : since, 1, "", "");
    if (!first) {
      const std::string body = error_body(first.error().message);
      co_await out.send(first.error().status, kJsonType, body);
      co_return;
    }
    if (!co_await out.begin_stream(kSseType)) co_return;
    int64_t rowid = job.empty() ? since : 0;
    int64_t seq = since;
    auto last_write = std::chrono::steady_clock::now();
    net::steady_timer t(io);
    while (!stopped) {
      std::vector<LogRecord> batch;
      if (job.empty()) {
        batch = cp.logs_after(dep, "", rowid, 500, &rowid);
      } else {
        auto r = cp.read_logs(c, dep, job, seq, 500, "", "");
        if (r)
          for (const json& l : (*r)["logs"]) {
            LogRecord rec;
            rec.seq = l["seq"];
            rec.job = l["job"];
            rec.op = l["opId"].is_string() ? l["opId"].get<std::string>() : "";
            rec.type = l["type"];
            rec.stream = l.value("stream", "");
            rec.ts = l["timestamp"];
            rec.message = l["message"];
            if (l.contains("progress")) rec.progress = l["progress"];
            batch.push_back(std::move(rec));
          }
      }
      std::string chunk;
      for (const LogRecord& r : batch) {
        seq = std::max(seq, r.seq);
        chunk += fmt::format("id: {}\ndata: {}\n\n", job.empty() ? r.rowid : r.seq, to_json(r).dump());
      }
      if (!chunk.empty()) {
        if (!co_await out.write(chunk)) co_return;
        last_write = std::chrono::steady_clock::now();
      }
      if (batch.size() == 500) continue;
      if (job.empty() && cp.deployment_ended(dep)) {
        // Stopped (or errored, archived) with no job left running: what is logged is all there will be.
        std::vector<LogRecord> rest = cp.logs_after(dep, "", rowid, 100000, &rowid);
        std::string tail;
        for (const LogRecord& r : rest) tail += fmt::format("id: {}\ndata: {}\n\n", r.rowid, to_json(r).dump());
        tail += "event: end\ndata: {}\n\n";
        if (co_await out.write(tail)) co_await out.end_stream();
        co_return;
      }
      if (!job.empty()) {
        auto j = cp.find_job(job);
        if (!j || !j->active()) {
          // Lines written with the job's end are in by now; one last read, then the end marker.
          auto r = cp.read_logs(c, dep, job, seq, 10000, "", "");
          std::string tail;
          if (r)
            for (const json& l : (*r)["logs"]) tail += fmt::format("id: {}\ndata: {}\n\n", l["seq"].get<int64_t>(), l.dump());
          tail += "event: end\ndata: {}\n\n";
          if (co_await out.write(tail)) co_await out.end_stream();
          co_return;
        }
      }
      if (std::chrono::steady_clock::now() - last_write >= opt.keep_alive) {
        if (!co_await out.write(kSseKeepAlive)) co_return;
        last_write = std::chrono::steady_clock::now();
      }
      t.expires_after(std::chrono::milliseconds(200));
      co_await t.async_wait(net::use_awaitable);
      if (out.peer_closed()) co_return;
    }
  }

  static bool is_follow(const HttpRequest& req, const std::vector<std::string>& seg) {
    if (req.method != "GET" || seg.size() < 3 || seg[0] != "deployments" || seg.back() != "logs") return false;
    if (seg.size() != 3 && !(seg.size() == 5 && seg[2] == "jobs")) return false;
    auto q = parse_query(req.query);
    return q["follow"] == "true" || q["follow"] == "1";
  }

  // The dashboard: /assets/<file> from web/, every other GET path outside /api the SPA's index.html.
  static std::optional<Answer> dashboard(const HttpRequest& req) {
    if (req.method != "GET" && req.method != "HEAD") return std::nullopt;
    const auto& files = embedded_web_files();
    auto find = [&](std::string_view name) -> const std::string_view* {
      for (const auto& [path, bytes] : files)
        if (path == name) return &bytes;
      return nullptr;
    };
    const std::string_view* index = find("index.html");
    if (!index) return std::nullopt;
    if (req.target.rfind("/assets/", 0) == 0) {
      const std::string name = req.target.substr(8);
      const std::string_view* f = name.find("..") == std::string::npos ? find(name) : nullptr;
      if (!f) return Answer{404, error_body("No such asset")};
      auto ends = [&](const char* ext) { return name.size() >= std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0; };
      const char* type = ends(".js") ? "text/javascript; charset=utf-8" : ends(".css") ? "text/css; charset=utf-8"
                         : ends(".svg") ? "image/svg+xml" : ends(".png") ? "image/png" : ends(".html") ? "text/html; charset=utf-8"
                         : ends(".json") ? "application/json" : "application/octet-stream";
      return Answer{200, std::string(*f), type};
    }
    return Answer{200, std::string(*index), "text/html; charset=utf-8"};
  }

  net::awaitable<void> handle(HttpRequest& req, HttpResponder& out) {
    if (auto g = gateway_target(req)) {
      co_await gateway.handle(req, out, g->first, g->second);
      co_return;
    }
    if (req.target.rfind("/api/", 0) != 0 && req.target != "/api" && req.target != "/health") {
      if (auto page = dashboard(req)) {
        co_await out.send(page->status, page->type, std::move(page->body));
        co_return;
      }
    }
    Answer a;
    try {
      if (req.body.size() > kMaxApiBodyBytes) {
        const std::string body = error_body("Request body too large");
        co_await out.send(413, kJsonType, body);
        co_return;
      }
      std::vector<std::string> seg = split_path(req.target);
      if (seg.size() == 1 && seg[0] == "health") {
        a = Answer{200, json{{"status", "ok"}}.dump()};
      } else if (seg.empty() || seg[0] != "api") {
        a = Answer{404, error_body("Not found. The REST API is under /api.")};
      } else {
        seg.erase(seg.begin());
        if (auto pub = public_route(req, seg)) {
          a = std::move(*pub);
        } else if (auto nr = node_route(req, seg)) {
          a = std::move(*nr);
        } else {
          Reply<Caller> caller = opt.auth_none ? Reply<Caller>(cp.admin()) : cp.authenticate(req.header("authorization"));
          if (!caller) {
            a = Answer{caller.error().status, error_body(caller.error().message)};
          } else if (req.method == "GET" && seg.size() == 3 && seg[0] == "deployments" && seg[2] == "stream") {
            const std::string dep_id = seg[1];
            const Caller who = *caller;
            co_await stream(req, out, who, dep_id);
            co_return;
          } else if (req.method == "GET" && seg.size() == 1 && seg[0] == "stream") {
            const std::string all;  // every deployment of the caller
            const Caller who = *caller;
            co_await stream(req, out, who, all);
            co_return;
          } else if (is_follow(req, seg)) {
            const std::string dep_id = seg[1];
            const std::string job_id = seg.size() == 5 ? seg[3] : std::string();
            const std::map<std::string, std::string> q = parse_query(req.query);
            const Caller who = *caller;
            co_await follow_logs(req, out, who, dep_id, job_id, q);
            co_return;
          } else {
            json body = json::object();
            bool bad = false;
            if (json_nesting_depth(req.body) > kMaxRequestJsonDepth) {
              a = Answer{400, error_body(fmt::format("Malformed JSON body: arrays and objects nest deeper than {} levels",
                                                     kMaxRequestJsonDepth))};
              bad = true;
            } else if (!req.body.empty()) {
              try {
                body = json::parse(req.body);
              } catch (const json::parse_error& e) {
                a = Answer{400, error_body(fmt::format("Malformed JSON body: {}", parse_error_text(e)))};
                bad = true;
              }
            }
            if (!bad) a = route(req, seg, *caller, body, parse_query(req.query));
          }
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "infera platform: %s %s: %s\n", req.method.c_str(), req.target.c_str(), e.what());
      a = Answer{500, error_body(fmt::format("Internal error: {}", e.what()))};
    }
    co_await out.send(a.status, a.type, std::move(a.body));
  }

  net::io_context& io;
  ControlPlane& cp;
  PlatformServerOptions opt;
  net::steady_timer timer;
  Gateway gateway;
  http::HttpServer server;
  bool stopped = false;
};

PlatformServer::PlatformServer(net::io_context& io, ControlPlane& cp, PlatformServerOptions opt)
    : impl_(std::make_unique<Impl>(io, cp, std::move(opt))) {}

PlatformServer::~PlatformServer() = default;

Status PlatformServer::start() {
  INFERA_RETURN_IF_ERROR(impl_->server.bind());
  impl_->server.start();
  net::co_spawn(impl_->io, impl_->reconcile_loop(), net::detached);
  return Status::ok();
}

void PlatformServer::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
  impl_->server.stop();
}

uint16_t PlatformServer::port() const { return impl_->server.port(); }

}  // namespace infera::platform
