// Nodes (§16), job logs (§13) and the gateway's view of endpoints (§11): node registration and
// heartbeats (assignments, stops, lost nodes), the log store, label lookup and replica choice.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/check.h"
#include "platform/control_plane.h"

namespace infera::platform {

namespace {
constexpr int64_t kMaxLogLinesPerJob = 200'000;
constexpr int64_t kJoinTokenTtlMs = 24 * 3600'000LL;
}  // namespace

json to_json(const LogRecord& r) {
  json j{{"seq", r.seq},
         {"job", r.job},
         {"opId", r.op.empty() ? json(nullptr) : json(r.op)},
         {"group", nullptr},
         {"type", r.type},
         {"timestamp", r.ts},
         {"message", r.message}};
  if (!r.stream.empty()) j["stream"] = r.stream;
  if (!r.progress.is_null()) j["progress"] = r.progress;
  return j;
}

std::string ControlPlane::register_node(const std::string& name, const std::vector<std::string>& markets,
                                        const json& resources, const std::string& address, bool local,
                                        const std::string& version) {
  Tx tx(db_);
  std::string id;
  if (local) {
    Stmt s = db_.prepare("SELECT id FROM nodes WHERE local = 1 LIMIT 1");
    if (s.step()) id = s.text(0);
  }
  if (id.empty()) {
    id = random_id();
    db_.prepare(
           "INSERT INTO nodes(id, name, status, version, markets, resources, address, local, last_heartbeat_at, "
           "created_at) VALUES(?,?,'ONLINE',?,?,?,?,?,?,?)")
        .bind(id, name, version, json(markets).dump(), resources.dump(), address, local, now(), now())
        .run();
  } else {
    db_.prepare(
           "UPDATE nodes SET name=?, status='ONLINE', version=?, markets=?, resources=?, address=?, "
           "last_heartbeat_at=? WHERE id=?")
        .bind(name, version, json(markets).dump(), resources.dump(), address, now(), id)
        .run();
  }
  tx.commit();
  return id;
}

NodeOrders ControlPlane::node_heartbeat(const NodeHeartbeat& hb) {
  NodeOrders orders;
  Stmt ns = db_.prepare("SELECT markets, draining, status FROM nodes WHERE id = ?");
  ns.bind(hb.node);
  if (!ns.step()) return orders;
  std::vector<std::string> markets = json::parse(ns.text(0)).get<std::vector<std::string>>();
  const bool draining = ns.i64(1) != 0;
  const std::string was = ns.text(2);
  {
    Tx tx(db_);
    db_.prepare("UPDATE nodes SET status = ?, resources = ?, last_heartbeat_at = ? WHERE id = ?")
        .bind(draining ? "DRAINING" : "ONLINE", hb.resources.dump(), now(), hb.node)
        .run();
    tx.commit();
  }
  (void)was;
  std::set<std::string> reported;
  for (const NodeJobReport& r : hb.jobs) {
    reported.insert(r.job);
    auto j = load_job(r.job);
    if (!j || j->state != job_state::kRunning || j->node != hb.node) {
      orders.stop.push_back(r.job);  // ended here (timeout, lost) or never ours: the node kills it
      continue;
    }
    {
      Tx tx(db_);
      db_.prepare("UPDATE jobs SET upstreams = ?, last_heartbeat_at = ? WHERE id = ?")
          .bind(r.upstreams.dump(), now(), r.job)
          .run();
      tx.commit();
    }
    if (j->phase != r.phase || j->endpoint_status != r.endpoint_status) {
      Status s = report_job_phase(r.job, r.phase, r.endpoint_status);
      (void)s;
    }
    if (j->stop_requested_at) {
      orders.stop.push_back(r.job);
    } else if (r.health_failures >= 3 && j->deployment) {
      // INFINITE replaces a replica whose continuous checks failed 3 times in a row (90 s); the
      // other strategies keep it and show DEGRADED.
      auto d = load_deployment(*j->deployment);
      if (d && d->strategy == strategy::kInfinite) {
        Tx tx(db_);
        auto fresh = load_job(r.job);
        add_event(d->id, "JOB_UNHEALTHY", fmt::format("Job {} failed 3 health checks in a row; replacing it", r.job));
        request_stop(*fresh, "FAILED");
        tx.commit();
        orders.stop.push_back(r.job);
      }
    }
  }
  // RUNNING here but not reported: the node lost it (e.g. it restarted). It ends now.
  Stmt mine = db_.prepare("SELECT id FROM jobs WHERE node = ? AND state = 'RUNNING'");
  mine.bind(hb.node);
  std::vector<std::string> lost;
  while (mine.step())
    if (!reported.count(mine.text(0))) lost.push_back(mine.text(0));
  for (const std::string& id : lost) {
    Tx tx(db_);
    auto j = load_job(id);
    if (!j || j->state != job_state::kRunning) continue;
    sys_log(id, "The node no longer runs this job (node restarted?)", "error");
    // Billed up to the last sign of life: the last heartbeat that reported it (or its start).
    Stmt lh = db_.prepare("SELECT last_heartbeat_at FROM jobs WHERE id = ?");
    lh.bind(id);
    int64_t last_ms = lh.step() && !lh.is_null(0) ? lh.i64(0) : *j->time_start * 1000;
    if (j->stop_requested_at) last_ms = std::min(last_ms, *j->stop_requested_at);
    end_job(*j, job_state::kStopped, j->stop_requested_at ? j->stop_reason.value_or("USER_STOP") : "NODE_LOST",
            std::nullopt, last_ms / 1000);
    tx.commit();
  }
  for (int i = 0; !draining && i < hb.free_slots; ++i) {
    auto j = claim_job(hb.node, markets);
    if (!j) break;
    Assignment a;
    a.job = j->id;
    a.deployment = j->deployment;
    a.remaining_s = j->timeout_s;
    if (j->deployment) {
      if (auto rev = load_revision(*j->deployment, j->revision)) a.job_definition = rev->job_definition;
      if (auto d = load_deployment(*j->deployment)) a.startup_timeout_min = d->startup_timeout_min;
    } else if (j->job_definition) {
      a.job_definition = json::parse(*j->job_definition);
    }
    Stmt nn = db_.prepare("SELECT name FROM nodes WHERE id = ?");
    nn.bind(hb.node);
    sys_log(j->id, fmt::format("Assigned to node {}", nn.step() ? nn.text(0) : hb.node));
    orders.start.push_back(std::move(a));
  }
  return orders;
}

Reply<json> ControlPlane::list_nodes(const Caller& c) {
  Stmt s = db_.prepare(
      "SELECT id, name, status, version, markets, resources, last_heartbeat_at, created_at, local, address FROM nodes "
      "ORDER BY created_at");
  json out = json::array();
  while (s.step()) {
    Stmt r = db_.prepare("SELECT COUNT(*) FROM jobs WHERE node = ? AND state = 'RUNNING'");
    r.bind(s.text(0));
    r.step();
    out.push_back(json{{"id", s.text(0)},
                       {"name", s.text(1)},
                       {"status", s.text(2)},
                       {"version", s.text(3)},
                       {"markets", json::parse(s.text(4))},
                       {"resources", json::parse(s.text(5))},
                       {"running_jobs", r.i64(0)},
                       {"local", s.i64(8) != 0},
                       {"address", s.text(9)},
                       {"last_heartbeat_at", s.is_null(6) ? json(nullptr) : json(iso8601_ms(s.i64(6)))},
                       {"created_at", iso8601_ms(s.i64(7))}});
  }
  return json{{"nodes", out}};
}

Reply<json> ControlPlane::get_node(const Caller& c, const std::string& id) {
  json all = (*list_nodes(c))["nodes"];
  for (const json& n : all)
    if (n["id"] == id || n["name"] == id) return n;
  return not_found(fmt::format("Node {} not found", id));
}

Reply<json> ControlPlane::drain_node(const Caller& c, const std::string& id) {
  if (!c.admin) return ApiError{403, "Only an admin can drain nodes."};
  int n = db_.prepare("UPDATE nodes SET draining = 1, status = 'DRAINING' WHERE id = ? OR name = ?").bind(id, id).run();
  if (n == 0) return not_found(fmt::format("Node {} not found", id));
  return get_node(c, id);
}

Reply<json> ControlPlane::create_join_token(const Caller& c) {
  if (!c.admin) return ApiError{403, "Only an admin can create join tokens."};
  std::string token = "join_" + random_base62(32);
  db_.prepare("INSERT INTO join_tokens(hash, created_by, created_at, expires_at) VALUES(?,?,?,?)")
      .bind(sha256_hex(token), c.account, now(), now() + kJoinTokenTtlMs)
      .run();
  return json{{"token", token}, {"expires_at", iso8601_ms(now() + kJoinTokenTtlMs)}};
}

bool ControlPlane::check_join_token(const std::string& token) {
  Stmt s = db_.prepare("SELECT expires_at FROM join_tokens WHERE hash = ?");
  s.bind(sha256_hex(token));
  return s.step() && s.i64(0) > now();
}

std::string ControlPlane::issue_node_token(const std::string& node) {
  std::string token = "node_" + random_base62(40);
  db_.prepare("UPDATE nodes SET token_hash = ? WHERE id = ?").bind(sha256_hex(token), node).run();
  return token;
}

bool ControlPlane::node_token_valid(const std::string& node, const std::string& token) {
  Stmt s = db_.prepare("SELECT token_hash FROM nodes WHERE id = ?");
  s.bind(node);
  return s.step() && !s.is_null(0) && constant_time_equal(s.text(0), sha256_hex(token));
}

// --- logs ---

void ControlPlane::append_logs(const std::string& job, std::vector<LogRecord> records) {
  if (records.empty()) return;
  Tx tx(db_);
  Stmt d = db_.prepare("SELECT deployment FROM jobs WHERE id = ?");
  d.bind(job);
  if (!d.step()) return;
  const std::optional<std::string> dep = d.opt_text(0);
  Stmt m = db_.prepare("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM logs WHERE job = ?");
  m.bind(job);
  m.step();
  int64_t seq = m.i64(0);
  const int64_t count = m.i64(1);
  Stmt ins = db_.prepare(
      "INSERT INTO logs(job, seq, deployment, op, type, stream, ts, message, progress) VALUES(?,?,?,?,?,?,?,?,?)");
  for (LogRecord& r : records) {
    r.seq = ++seq;
    ins.bind(job, r.seq, dep, r.op.empty() ? std::optional<std::string>() : r.op, r.type,
             r.stream.empty() ? std::optional<std::string>() : r.stream, r.ts ? r.ts : now(), r.message,
             r.progress.is_null() ? std::optional<std::string>() : r.progress.dump());
    ins.run();
    ins.reset();
  }
  if (count + static_cast<int64_t>(records.size()) > kMaxLogLinesPerJob) {
    // The oldest lines go first (seq keeps counting, so followers see the gap as a jump).
    db_.prepare("DELETE FROM logs WHERE job = ? AND seq <= ?").bind(job, seq - kMaxLogLinesPerJob).run();
  }
  tx.commit();
}

void ControlPlane::sys_log(const std::string& job, const std::string& message, const char* type) {
  LogRecord r;
  r.type = type;
  r.ts = now();
  r.message = message;
  // Runs inside the caller's transaction when there is one; append_logs opens its own otherwise.
  Stmt d = db_.prepare("SELECT deployment FROM jobs WHERE id = ?");
  d.bind(job);
  if (!d.step()) return;
  Stmt m = db_.prepare("SELECT COALESCE(MAX(seq), 0) FROM logs WHERE job = ?");
  m.bind(job);
  m.step();
  db_.prepare("INSERT INTO logs(job, seq, deployment, op, type, stream, ts, message, progress) "
              "VALUES(?,?,?,NULL,?,NULL,?,?,NULL)")
      .bind(job, m.i64(0) + 1, d.opt_text(0), r.type, r.ts, r.message)
      .run();
}

namespace {
LogRecord read_log(Stmt& s) {
  LogRecord r;
  r.job = s.text(0);
  r.seq = s.i64(1);
  if (!s.is_null(2)) r.op = s.text(2);
  r.type = s.text(3);
  if (!s.is_null(4)) r.stream = s.text(4);
  r.ts = s.i64(5);
  r.message = s.text(6);
  if (!s.is_null(7)) r.progress = json::parse(s.text(7));
  return r;
}
constexpr const char* kLogCols = "job, seq, op, type, stream, ts, message, progress, rowid";
}  // namespace

Reply<json> ControlPlane::read_logs(const Caller& c, const std::string& deployment, const std::string& job,
                                    int64_t since_seq, int limit, const std::string& op, const std::string& type) {
  auto d = owned(c, deployment);
  if (!d) return d.error();
  if (!job.empty()) {
    auto j = load_job(job);
    if (!j || j->deployment != d->id) return not_found(fmt::format("Job {} not found", job));
  }
  // A job's records are paged by their seq; a deployment's (every job's, merged in write order)
  // by the cursor its SSE stream sends as `id:` (seq is per job, so it cannot page a merge).
  std::string sql = fmt::format("SELECT {} FROM logs WHERE {} AND {} > ?2", kLogCols,
                                job.empty() ? "deployment = ?1" : "job = ?1", job.empty() ? "rowid" : "seq");
  if (!op.empty()) sql += " AND op = ?3";
  if (!type.empty()) sql += " AND type = ?4";
  sql += job.empty() ? " ORDER BY rowid LIMIT ?5" : " ORDER BY seq LIMIT ?5";
  Stmt s = db_.prepare(sql);
  s.bind(job.empty() ? d->id : job, since_seq, op, type, limit);
  json logs = json::array();
  int64_t next = since_seq;
  while (s.step()) {
    LogRecord r = read_log(s);
    next = std::max(next, job.empty() ? s.i64(8) : r.seq);
    logs.push_back(to_json(r));
  }
  return json{{"logs", logs}, {"next_seq", next}};
}

bool ControlPlane::deployment_ended(const std::string& deployment) {
  auto d = load_deployment(deployment);
  if (!d) return true;
  if (d->status != status::kStopped && d->status != status::kError && d->status != status::kArchived) return false;
  for (const Job& j : deployment_jobs(d->id, true))
    if (j.active()) return false;
  return true;
}

std::vector<LogRecord> ControlPlane::logs_after(const std::string& deployment, const std::string& job,
                                                int64_t after_rowid, int limit, int64_t* last_rowid) {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM logs WHERE {} AND rowid > ?2 ORDER BY rowid LIMIT ?3", kLogCols,
                                   job.empty() ? "deployment = ?1" : "job = ?1"));
  s.bind(job.empty() ? deployment : job, after_rowid, limit);
  std::vector<LogRecord> out;
  while (s.step()) {
    out.push_back(read_log(s));
    out.back().rowid = s.i64(8);
    *last_rowid = s.i64(8);
  }
  return out;
}

// --- gateway ---

std::optional<EndpointRoute> ControlPlane::resolve_label(const std::string& label) {
  // Labels of every live deployment's active revision, rebuilt when anything changed.
  if (label_cache_seq_ != feed_.last_seq()) {
    label_cache_.clear();
    Stmt s = db_.prepare("SELECT id FROM deployments WHERE status != 'ARCHIVED'");
    std::vector<std::string> ids;
    while (s.step()) ids.push_back(s.text(0));
    for (const std::string& id : ids) {
      auto d = load_deployment(id);
      if (!d) continue;
      for (const json& e : endpoints_json(*d, {})) {
        const std::string url = e["url"];
        // The label is the last path segment (/e/<label>/) or the first host label.
        std::string l;
        if (auto p = url.find("/e/"); p != std::string::npos) {
          l = url.substr(p + 3);
          l = l.substr(0, l.find('/'));
        } else {
          auto start = url.find("://") + 3;
          l = url.substr(start, url.find('.', start) - start);
        }
        label_cache_[l] = EndpointRoute{d->id, e["opId"], e["port"], std::nullopt};
      }
    }
    label_cache_seq_ = feed_.last_seq();
  }
  std::string lower = label;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (auto it = label_cache_.find(lower); it != label_cache_.end()) return it->second;
  // Per-job URLs: a running job whose label matches.
  Stmt s = db_.prepare("SELECT id, deployment FROM jobs WHERE state = 'RUNNING'");
  while (s.step()) {
    Job j = *load_job(s.text(0));
    auto url = job_url(j);
    if (url && url->find(lower) != std::string::npos) {
      auto rev = j.deployment ? load_revision(*j.deployment, j.revision) : std::nullopt;
      json jd = rev ? rev->job_definition : (j.job_definition ? json::parse(*j.job_definition) : json());
      for (const json& op : jd.value("ops", json::array())) {
        const json& ex = op.value("args", json::object()).value("expose", json());
        int port = ex.is_number_integer() ? ex.get<int>()
                   : ex.is_array() && !ex.empty() && ex[0].is_number_integer() ? ex[0].get<int>()
                   : ex.is_array() && !ex.empty() && ex[0].is_object() ? ex[0].value("port", 0)
                                                                       : 0;
        if (port > 0) return EndpointRoute{j.deployment.value_or(""), op.value("id", ""), port, j.id};
      }
    }
  }
  return std::nullopt;
}

std::vector<Upstream> ControlPlane::upstreams(const EndpointRoute& r) {
  std::vector<Upstream> out;
  Stmt s = r.job ? db_.prepare("SELECT id, upstreams, endpoint_status FROM jobs WHERE id = ?1 AND state = 'RUNNING'")
                 : db_.prepare(
                       "SELECT id, upstreams, endpoint_status FROM jobs WHERE deployment = ?1 AND state = 'RUNNING' "
                       "AND ready_at IS NOT NULL ORDER BY time_start");
  s.bind(r.job ? *r.job : r.deployment);
  const std::string key = fmt::format("{}:{}", r.op, r.port);
  while (s.step()) {
    if (s.is_null(1)) continue;
    const std::string st = s.text(2);
    if (st != "ONLINE" && st != "UNKNOWN") continue;
    json ups = json::parse(s.text(1));
    if (!ups.contains(key) || !ups[key].is_string()) continue;
    std::string hp = ups[key];
    auto colon = hp.rfind(':');
    if (colon == std::string::npos) continue;
    out.push_back(Upstream{s.text(0), hp.substr(0, colon), static_cast<uint16_t>(std::atoi(hp.c_str() + colon + 1))});
  }
  return out;
}

std::string ControlPlane::not_ready_message(const std::string& deployment, bool* starting) {
  auto d = load_deployment(deployment);
  *starting = false;
  if (!d || d->status == status::kArchived) return "";
  if (d->status == status::kStarting || d->status == status::kRunning) {
    *starting = true;
    std::string detail = d->status == status::kStarting ? " (scheduling the first job)" : " (no job listed yet)";
    for (const Job& j : deployment_jobs(d->id, true)) {
      std::string phase = j.phase;
      for (char& ch : phase) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      // A replica that was ready and no longer answers: its node is offline or its checks fail.
      if (j.state == job_state::kRunning && j.ready_at && j.endpoint_status == "OFFLINE") phase = "not answering";
      detail = fmt::format(" (job {}…: {})", j.id.substr(0, 4), j.state == job_state::kQueued ? "queued, waiting for a node" : phase);
      break;
    }
    int ready = 0;
    for (const Job& j : deployment_jobs(d->id, true))
      ready += j.state == job_state::kRunning && j.ready_at && j.endpoint_status != "OFFLINE" ? 1 : 0;
    if (d->replicas == 0) return fmt::format("Deployment {} is scaled to 0 replicas.", d->name);
    return fmt::format("Deployment {} is starting: {} of {} replicas ready{}.", d->name, ready, d->replicas, detail);
  }
  return fmt::format("Deployment {} is {}. Start it to serve requests.", d->name, d->status);
}

bool ControlPlane::endpoint_auth_required(const std::string& deployment, std::string* owner) {
  auto d = load_deployment(deployment);
  if (!d) return false;
  *owner = d->owner;
  return d->endpoint_auth;
}

}  // namespace infera::platform
