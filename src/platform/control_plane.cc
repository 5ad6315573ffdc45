// Deployments: create, the status machine's guarded transitions, updates, revisions, reads.
#include "platform/control_plane.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/check.h"
#include "platform/cron.h"
#include "platform/job_definition.h"
#include "platform/listing.h"
#include "platform/templates.h"

namespace infera::platform {

namespace {

constexpr int kMaxReplicas = 100;
constexpr size_t kMaxNameChars = 100;

const char* const kAdjectives[] = {"brave", "quiet", "swift", "calm", "bright", "gentle", "bold", "clever",
                                   "eager", "fancy", "happy", "jolly", "kind", "lively", "proud", "witty"};
const char* const kNouns[] = {"falcon", "otter", "maple", "river", "comet", "badger", "heron", "cedar",
                              "lynx", "orca", "pine", "raven", "tiger", "willow", "wren", "zebra"};

std::string random_name() {
  std::string r = random_bytes(3);
  auto pick = [&](int i, size_t n) { return static_cast<unsigned char>(r[static_cast<size_t>(i)]) % n; };
  return fmt::format("{}_{}_{}", kAdjectives[pick(0, std::size(kAdjectives))],
                     kAdjectives[pick(1, std::size(kAdjectives))], kNouns[pick(2, std::size(kNouns))]);
}

bool one_of(const std::string& s, std::initializer_list<const char*> set) {
  for (const char* x : set)
    if (s == x) return true;
  return false;
}

std::string join(std::initializer_list<const char*> set) {
  std::string out;
  for (const char* x : set) out += (out.empty() ? "" : ", ") + std::string(x);
  return out;
}

ApiError wrong_state(const std::string& st, std::initializer_list<const char*> allowed) {
  return conflict(fmt::format("Deployment is in the incorrect state: {} (allowed: {})", st, join(allowed)));
}

const ApiError kArchivedError{409, "Cannot modify an archived deployment."};

// Ports an op exposes, in order (ranges expand, capped).
std::vector<int> exposed_ports(const json& args) {
  std::vector<int> out;
  if (!args.is_object() || !args.contains("expose")) return out;
  auto add = [&](const json& e) {
    if (e.is_number_integer()) {
      out.push_back(e.get<int>());
    } else if (e.is_string()) {
      std::string s = e;
      auto dash = s.find('-');
      if (dash == std::string::npos) return;
      int a = std::atoi(s.substr(0, dash).c_str()), b = std::atoi(s.substr(dash + 1).c_str());
      for (int p = a; p <= b && out.size() < 64; ++p) out.push_back(p);
    } else if (e.is_object() && e.contains("port") && e["port"].is_number_integer()) {
      out.push_back(e["port"].get<int>());
    }
  };
  const json& ex = args["expose"];
  if (ex.is_array()) {
    for (const json& e : ex) add(e);
  } else {
    add(ex);
  }
  return out;
}

// Sum of the job's cost so far (running) or its final charge.
Micros job_cost(const Job& j, int64_t now_s) {
  if (!j.active()) return j.charged;
  if (!j.time_start) return 0;
  return std::min(cost_for_seconds(j.price_per_hour, now_s - *j.time_start), j.reserved);
}

}  // namespace

Result<std::unique_ptr<ControlPlane>> ControlPlane::open(const std::string& db_path, const Clock& clock,
                                                         PlatformConfig config) {
  INFERA_ASSIGN_OR_RETURN(Db db, Db::open(db_path));
  std::unique_ptr<ControlPlane> cp(new ControlPlane(std::move(db), clock, std::move(config)));
  try {
    cp->migrate();
    cp->seed();
  } catch (const SqlError& e) {
    return error("cannot initialise the platform store {}: {}", db_path, e.what());
  }
  return cp;
}

ControlPlane::ControlPlane(Db db, const Clock& clock, PlatformConfig cfg)
    : db_(std::move(db)), clock_(clock), cfg_(std::move(cfg)) {}

ControlPlane::~ControlPlane() = default;

void ControlPlane::fault(const std::string& step) {
  if (cfg_.fault_hook) cfg_.fault_hook(step);
}

// --- JSON views ---

std::string endpoint_url_for(const PlatformConfig& cfg, const std::string& label) {
  if (cfg.endpoint_domain.empty()) return fmt::format("{}/e/{}/", cfg.public_url, label);
  if (cfg.endpoint_domain == "localhost") {
    auto colon = cfg.public_url.rfind(':');
    std::string port = colon != std::string::npos && colon > 6 ? cfg.public_url.substr(colon) : "";
    return fmt::format("http://{}.localhost{}/", label, port);
  }
  return fmt::format("https://{}.{}/", label, cfg.endpoint_domain);
}

std::vector<json> ControlPlane::endpoints_json(const Deployment& d, const std::vector<Job>& jobs) {
  std::vector<json> out;
  auto rev = load_revision(d.id, d.active_revision);
  if (!rev || !rev->job_definition.contains("ops")) return out;
  const std::string hash = deployment_hash(d.id, d.owner);
  // Best status over the replicas: ONLINE > UNKNOWN > OFFLINE.
  std::string best = "OFFLINE";
  for (const Job& j : jobs) {
    if (j.state != job_state::kRunning) continue;
    if (j.endpoint_status == "ONLINE") best = "ONLINE";
    else if (j.endpoint_status == "UNKNOWN" && best != "ONLINE") best = "UNKNOWN";
  }
  for (const json& op : rev->job_definition["ops"]) {
    if (!op.is_object() || !op.contains("id") || !op["id"].is_string()) continue;
    std::vector<int> ports = exposed_ports(op.value("args", json::object()));
    for (size_t i = 0; i < ports.size(); ++i) {
      std::string label = deployment_label(op["id"].get<std::string>(), i == 0 ? 0 : ports[i], hash);
      out.push_back(json{{"opId", op["id"]}, {"port", ports[i]}, {"url", endpoint_url_for(cfg_, label)}, {"status", best}});
    }
  }
  return out;
}

std::optional<std::string> ControlPlane::job_url(const Job& j) {
  json jd;
  if (j.deployment) {
    auto rev = load_revision(*j.deployment, j.revision);
    if (!rev) return std::nullopt;
    jd = rev->job_definition;
  } else if (j.job_definition) {
    jd = json::parse(*j.job_definition);
  }
  if (!jd.contains("ops") || !jd["ops"].is_array()) return std::nullopt;
  int index = 0;
  for (const json& op : jd["ops"]) {
    std::vector<int> ports = exposed_ports(op.value("args", json::object()));
    if (!ports.empty()) return endpoint_url_for(cfg_, job_label(index, ports[0], j.id));
    ++index;
  }
  return std::nullopt;
}

json ControlPlane::deployment_json(const Deployment& d) {
  std::vector<Job> jobs = deployment_jobs(d.id, true);
  int ready = 0;
  for (const Job& j : jobs)  // ready and reachable: not failing its health checks, its node not offline
    if (j.state == job_state::kRunning && j.ready_at && j.endpoint_status != "OFFLINE") ++ready;
  const bool live = one_of(d.status, {status::kStarting, status::kRunning, status::kInsufficientFunds});
  const char* health = !live ? "NONE" : ready == 0 ? "NOT_READY" : ready < d.replicas ? "DEGRADED" : "READY";
  json j{{"id", d.id},
         {"name", d.name},
         {"vault", d.owner},
         {"market", d.market},
         {"owner", d.owner},
         {"status", d.status},
         {"strategy", d.strategy},
         {"replicas", d.replicas},
         {"timeout", d.timeout_min},
         {"endpoints", endpoints_json(d, jobs)},
         {"confidential", d.confidential},
         {"endpoint_auth", d.endpoint_auth},
         {"active_revision", d.active_revision},
         {"active_jobs", static_cast<int>(jobs.size())},
         {"ready_replicas", ready},
         {"health", health},
         {"startup_timeout", d.startup_timeout_min},
         {"next_retry_at", d.next_retry_at ? json(iso8601_ms(*d.next_retry_at)) : json(nullptr)},
         {"rapid_streak", d.rapid_streak},
         {"template", d.template_id ? json(*d.template_id) : json(nullptr)},
         {"created_at", iso8601_ms(d.created_at)},
         {"updated_at", iso8601_ms(d.updated_at)}};
  if (d.schedule) j["schedule"] = *d.schedule;
  if (d.rotation_time_min) j["rotation_time"] = *d.rotation_time_min;
  if (auto m = load_market(d.market)) j["market_slug"] = m->slug;
  return j;
}

// --- events, tasks, change feed ---

void ControlPlane::add_event(const std::string& dep, const std::string& type, const std::string& message,
                             const std::optional<std::string>& tx, const char* category) {
  Event e;
  e.deployment = dep;
  e.category = category;
  e.type = type;
  e.message = message;
  e.tx = tx;
  e.created_at = now();
  db_.prepare("INSERT INTO events(deployment, category, type, message, tx, created_at) VALUES(?,?,?,?,?,?)")
      .bind(e.deployment, e.category, e.type, e.message, e.tx, e.created_at)
      .run();
  json data = to_json(e);
  data["type"] = "event";
  data["event_type"] = type;
  feed_.push(dep, std::move(data));
}

void ControlPlane::add_task(const Task& task, const std::string& idem_key) {
  Task t = task;
  if (t.id.empty()) t.id = random_id();
  t.created_at = now();
  int n = db_.prepare(
                 "INSERT OR IGNORE INTO tasks(id, deployment, type, job, limit_n, active_revision, due_at, status, "
                 "attempts, idem_key, created_at) VALUES(?,?,?,?,?,?,?,'PENDING',0,?,?)")
              .bind(t.id, t.deployment, t.type, t.job, t.limit, t.active_revision, t.due_at, idem_key, t.created_at)
              .run();
  if (n == 1) {
    json data = to_json(t);
    data["task"] = t.type;
    data["type"] = "task";
    feed_.push(t.deployment, std::move(data));
  }
}

void ControlPlane::remove_pending_tasks(const std::string& dep, const std::string& type) {
  if (type.empty()) {
    db_.prepare("DELETE FROM tasks WHERE deployment = ?").bind(dep).run();
  } else {
    db_.prepare("DELETE FROM tasks WHERE deployment = ? AND type = ?").bind(dep, type).run();
  }
}

void ControlPlane::emit_deployment(const Deployment& d) {
  json full = deployment_json(d);
  feed_.push(d.id, json{{"type", "deployment"},
                        {"id", d.id},
                        {"status", d.status},
                        {"replicas", d.replicas},
                        {"active_revision", d.active_revision},
                        {"ready_replicas", full["ready_replicas"]},
                        {"health", full["health"]},
                        {"active_jobs", full["active_jobs"]},
                        {"timeout", d.timeout_min},
                        {"name", d.name},
                        {"endpoints", full["endpoints"]},
                        {"updated_at", iso8601_ms(d.updated_at)}});
}

void ControlPlane::emit_job(const Job& j) {
  if (!j.deployment) return;
  feed_.push(*j.deployment, json{{"type", "job"},
                                 {"job", j.id},
                                 {"state", j.state},
                                 {"node", j.node ? json(*j.node) : json(nullptr)},
                                 {"timeStart", j.time_start ? json(*j.time_start) : json(nullptr)},
                                 {"timeEnd", j.time_end ? json(*j.time_end) : json(nullptr)},
                                 {"phase", j.phase},
                                 {"endpoint_status", j.endpoint_status},
                                 {"end_reason", j.end_reason ? json(*j.end_reason) : json(nullptr)}});
}

void ControlPlane::set_status(Deployment& d, const char* to, const std::string& why) {
  if (d.status == to) return;
  std::string from = d.status;
  d.status = to;
  d.updated_at = now();
  save_deployment(d);
  add_event(d.id, "DEPLOYMENT_STATUS_CHANGED",
            fmt::format("Deployment status changed from {} to {}{}", from, to, why.empty() ? "" : ": " + why),
            std::nullopt, "Deployment");
  emit_deployment(d);
}

Reply<Deployment> ControlPlane::owned(const Caller& c, const std::string& id) {
  auto d = load_deployment(id);
  if (!d || (d->owner != c.account && !c.admin)) return not_found(fmt::format("Deployment {} not found", id));
  return *d;
}

// --- validation shared by create, revisions and raw jobs ---

Reply<json> ControlPlane::validate_for_market(const json& jd, const Market& m) {
  std::string err = job_definition_error(jd);
  if (!err.empty()) return bad_request(err);
  const int64_t vram = required_vram_mb(jd);
  if (m.kind == "GPU" && vram > static_cast<int64_t>(m.lowest_vram_gb) * 1024)
    return bad_request(fmt::format("Market {} does not meet the required VRAM ({} MB) for this job definition.",
                                   m.slug, vram));
  if (m.kind == "CPU") {
    for (const json& op : jd["ops"]) {
      const json args = op.value("args", json::object());
      if (args.value("gpu", false) && !is_native_vllm_image(args.value("image", std::string())))
        return bad_request(fmt::format(
            "Market {} has no GPU: op {} sets gpu:true with image {}, which only runs on a GPU market.", m.slug,
            op.value("id", std::string("?")), args.value("image", std::string("?"))));
    }
  }
  return jd;
}

namespace {

// Reads an optional integer field: error text when present with a wrong type.
std::optional<std::string> get_int(const json& body, const char* key, std::optional<int64_t>& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  const json& v = body[key];
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return std::nullopt;
  }
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()))) {
    out = static_cast<int64_t>(v.get<double>());
    return std::nullopt;
  }
  return fmt::format("{}: expected integer", key);
}

std::optional<std::string> get_bool(const json& body, const char* key, bool& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_boolean()) return fmt::format("{}: expected boolean", key);
  out = body[key];
  return std::nullopt;
}

std::optional<std::string> check_name(const json& v, std::string& out) {
  if (!v.is_string()) return "name: expected string";
  out = v;
  if (out.size() > kMaxNameChars) return fmt::format("name: at most {} characters (got {})", kMaxNameChars, out.size());
  return std::nullopt;
}

// Timeout rules shared by create and update-timeout.
std::optional<std::string> check_timeout(int64_t t, const std::string& strat, const Market& m) {
  if (strat == strategy::kInfinite && t < 60) return "timeout: must be at least 60 minutes for INFINITE";
  if (t < 1) return "timeout: must be at least 1 minute";
  if (t > m.job_timeout_min)
    return fmt::format("timeout: must be at most {} minutes on market {}", m.job_timeout_min, m.slug);
  return std::nullopt;
}

}  // namespace

Reply<json> ControlPlane::create_deployment(const Caller& c, const json& body) {
  if (!body.is_object()) return bad_request("body: expected a JSON object");
  Deployment d;
  d.id = random_id();
  d.owner = c.account;
  std::vector<std::string> errs;
  auto note = [&](std::optional<std::string> e) {
    if (e) errs.push_back(std::move(*e));
  };

  if (body.contains("name") && !body["name"].is_null()) note(check_name(body["name"], d.name));
  if (d.name.empty()) d.name = random_name();

  std::optional<Market> market;
  if (!body.contains("market")) errs.push_back("market: required");
  else if (!body["market"].is_string()) errs.push_back("market: expected string");

  if (!body.contains("strategy")) {
    errs.push_back("strategy: required");
  } else if (!body["strategy"].is_string() ||
             !one_of(body["strategy"].get<std::string>(),
                     {strategy::kSimple, strategy::kSimpleExtend, strategy::kScheduled, strategy::kInfinite})) {
    errs.push_back("strategy: expected one of SIMPLE, SIMPLE-EXTEND, SCHEDULED, INFINITE");
  } else {
    d.strategy = body["strategy"];
  }

  std::optional<int64_t> replicas, timeout, rotation, startup;
  note(get_int(body, "replicas", replicas));
  if (!body.contains("replicas") || body["replicas"].is_null()) errs.push_back("replicas: required");
  else if (replicas && (*replicas < 1 || *replicas > kMaxReplicas))
    errs.push_back(fmt::format("replicas: must be between 1 and {} (got {})", kMaxReplicas, *replicas));
  note(get_int(body, "timeout", timeout));
  if (!body.contains("timeout") || body["timeout"].is_null()) errs.push_back("timeout: required");
  note(get_int(body, "rotation_time", rotation));
  note(get_int(body, "startup_timeout", startup));
  if (startup && (*startup < 1 || *startup > 1440)) errs.push_back("startup_timeout: must be between 1 and 1440 minutes");
  bool autostart = false;
  note(get_bool(body, "autostart", autostart));
  note(get_bool(body, "confidential", d.confidential));
  note(get_bool(body, "endpoint_auth", d.endpoint_auth));

  if (body.contains("schedule") && !body["schedule"].is_null() &&
      !(body["schedule"].is_string() && body["schedule"].get<std::string>().empty() &&
        d.strategy != strategy::kScheduled)) {
    if (!body["schedule"].is_string()) {
      errs.push_back("schedule: expected string");
    } else if (!d.strategy.empty() && d.strategy != strategy::kScheduled) {
      errs.push_back("schedule: only allowed with strategy SCHEDULED");
    } else {
      auto cron = parse_cron(body["schedule"].get<std::string>());
      if (!cron) errs.push_back(cron.error());
      else d.schedule = body["schedule"];
    }
  }
  if (d.strategy == strategy::kScheduled && !d.schedule && body.value("schedule", json()).is_null())
    errs.push_back("schedule: required for strategy SCHEDULED");

  if (body.contains("template") && !body["template"].is_null()) {
    if (!body["template"].is_string()) errs.push_back("template: expected string");
    else if (!TemplateCatalog::builtin().find(body["template"].get<std::string>()))
      errs.push_back(fmt::format("template: unknown template {}", body["template"].get<std::string>()));
    else d.template_id = body["template"];
  }

  json jd;
  if (!body.contains("job_definition") || body["job_definition"].is_null()) errs.push_back("job_definition: required");
  else if (!body["job_definition"].is_object()) errs.push_back("job_definition: expected object");
  else jd = body["job_definition"];

  if (body.contains("market") && body["market"].is_string()) {
    market = load_market(body["market"]);
    if (!market && errs.empty()) return not_found(fmt::format("Market {} not found", body["market"].get<std::string>()));
  }
  if (market && timeout && !d.strategy.empty()) note(check_timeout(*timeout, d.strategy, *market));
  if (d.strategy == strategy::kInfinite) {
    int64_t rot = rotation.value_or(20);
    if (rot < 1) errs.push_back("rotation_time: must be at least 1 minute");
    else if (timeout && *timeout >= 60 && rot >= *timeout - 10)
      errs.push_back(fmt::format("rotation_time: must be less than timeout - 10 ({} minutes)", timeout ? *timeout - 10 : 0));
    d.rotation_time_min = static_cast<int>(rot);
  } else if (rotation) {
    errs.push_back("rotation_time: only allowed with strategy INFINITE");
  }
  if (market && !jd.is_null()) {
    auto v = validate_for_market(jd, *market);
    if (!v) errs.push_back(v.error().message);
  } else if (!jd.is_null()) {
    std::string e = job_definition_error(jd);
    if (!e.empty()) errs.push_back(e);
  }
  if (!errs.empty()) {
    std::string msg;
    for (const auto& e : errs) msg += (msg.empty() ? "" : "; ") + e;
    return bad_request(msg);
  }

  d.market = market->address;
  d.replicas = static_cast<int>(*replicas);
  d.timeout_min = static_cast<int>(*timeout);
  if (startup) d.startup_timeout_min = static_cast<int>(*startup);
  d.status = status::kDraft;
  d.created_at = d.updated_at = now();

  Tx tx(db_);
  if (autostart) {
    auto funds = check_funds(c.account, mul_div_round(market->price_per_hour, static_cast<int64_t>(d.replicas) * d.timeout_min, 60));
    if (!funds) return funds.error();
  }
  json stored = jd;
  stored["deployment_id"] = d.id;
  if (!stored.contains("meta") || !stored["meta"].is_object()) stored["meta"] = json::object();
  stored["meta"]["trigger"] = "deployment-manager";
  save_deployment(d);
  db_.prepare("INSERT INTO revisions(deployment, revision, hash, job_definition, created_at) VALUES(?,1,?,?,?)")
      .bind(d.id, definition_hash(stored), stored.dump(), now())
      .run();
  add_event(d.id, "DEPLOYMENT_CREATED", fmt::format("Deployment {} created ({}, {} replica(s), {} min, market {})",
                                                    d.name, d.strategy, d.replicas, d.timeout_min, market->slug),
            std::nullopt, "Deployment");
  if (autostart) set_status(d, status::kStarting, "autostart");
  tx.commit();
  emit_deployment(d);
  return deployment_json(d);
}

Reply<json> ControlPlane::get_deployment(const Caller& c, const std::string& id) {
  auto d = owned(c, id);
  if (!d) return d.error();
  return deployment_json(*d);
}

Reply<json> ControlPlane::list_deployments(const Caller& c, const ListQuery& q) {
  Stmt s = db_.prepare("SELECT id FROM deployments WHERE owner = ? ORDER BY created_at, rowid");
  s.bind(c.account);
  std::vector<std::string> ids;
  while (s.step()) ids.push_back(s.text(0));
  auto filter = [&](const char* k) -> const std::string* {
    auto it = q.filters.find(k);
    return it == q.filters.end() || it->second.empty() ? nullptr : &it->second;
  };
  auto csv_has = [](const std::string& csv, const std::string& v) {
    size_t pos = 0;
    while (pos <= csv.size()) {
      size_t end = csv.find(',', pos);
      if (end == std::string::npos) end = csv.size();
      if (csv.compare(pos, end - pos, v) == 0) return true;
      pos = end + 1;
    }
    return false;
  };
  auto lower = [](std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  };
  std::vector<json> items;
  for (const std::string& id : ids) {
    auto d = load_deployment(id);
    if (!d) continue;
    if (const auto* st = filter("status")) {
      if (!csv_has(*st, d->status)) continue;
    } else if (d->status == status::kArchived) {
      continue;  // archived is hidden unless asked for
    }
    if (const auto* v = filter("strategy"); v && !csv_has(*v, d->strategy)) continue;
    if (const auto* v = filter("id"); v && *v != d->id) continue;
    if (const auto* v = filter("name"); v && *v != d->name) continue;
    if (const auto* v = filter("vault"); v && *v != d->owner) continue;
    if (const auto* v = filter("search");
        v && lower(d->name).find(lower(*v)) == std::string::npos && d->id.find(*v) == std::string::npos)
      continue;
    if (const auto* v = filter("created_after"); v && d->created_at <= parse_iso8601_ms(*v)) continue;
    if (const auto* v = filter("created_before"); v && d->created_at >= parse_iso8601_ms(*v)) continue;
    items.push_back(deployment_json(*d));
  }
  return paginate(std::move(items), q, "deployments");
}

Reply<json> ControlPlane::start_deployment(const Caller& c, const std::string& id) {
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  if (!one_of(d->status, {status::kDraft, status::kStopped, status::kError, status::kInsufficientFunds}))
    return wrong_state(d->status, {status::kDraft, status::kStopped, status::kError, status::kInsufficientFunds});
  auto m = load_market(d->market);
  CHECK(m.has_value());
  auto funds = check_funds(d->owner, mul_div_round(m->price_per_hour, static_cast<int64_t>(d->replicas) * d->timeout_min, 60));
  if (!funds) return funds.error();
  remove_pending_tasks(d->id);
  d->rapid_streak = 0;
  d->next_retry_at.reset();
  set_status(*d, status::kStarting);
  tx.commit();
  return json{{"status", d->status}, {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::stop_deployment(const Caller& c, const std::string& id) {
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  if (!one_of(d->status,
              {status::kStarting, status::kRunning, status::kError, status::kInsufficientFunds, status::kStopping}))
    return wrong_state(d->status,
                       {status::kStarting, status::kRunning, status::kError, status::kInsufficientFunds, status::kStopping});
  remove_pending_tasks(d->id);
  d->next_retry_at.reset();
  set_status(*d, status::kStopping, "stop requested");
  for (Job& j : deployment_jobs(d->id, true)) request_stop(j, "USER_STOP");
  tx.commit();
  return json{{"status", d->status}, {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::archive_deployment(const Caller& c, const std::string& id) {
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  if (!one_of(d->status, {status::kStopped, status::kDraft})) return wrong_state(d->status, {status::kStopped, status::kDraft});
  set_status(*d, status::kArchived);
  tx.commit();
  return json{{"status", d->status}, {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::delete_deployment(const Caller& c, const std::string& id) {
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  if (!one_of(d->status, {status::kStopped, status::kDraft})) return wrong_state(d->status, {status::kStopped, status::kDraft});
  for (const char* table : {"jobs", "revisions", "events", "tasks", "logs"})
    db_.prepare(fmt::format("DELETE FROM {} WHERE deployment = ?", table)).bind(id).run();
  db_.prepare("DELETE FROM deployments WHERE id = ?").bind(id).run();
  tx.commit();
  feed_.push(id, json{{"type", "deployment"}, {"id", id}, {"status", "DELETED"}});
  return json::object();
}

Reply<json> ControlPlane::update_name(const Caller& c, const std::string& id, const json& body) {
  if (!body.is_object() || !body.contains("name")) return bad_request("name: required");
  std::string name;
  if (auto e = check_name(body["name"], name)) return bad_request(*e);
  if (name.empty()) return bad_request("name: must not be empty");
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  d->name = name;
  d->updated_at = now();
  save_deployment(*d);
  tx.commit();
  emit_deployment(*d);
  return json{{"name", d->name}, {"updated_at", iso8601_ms(d->updated_at)}};
}

std::vector<Job> ControlPlane::pick_jobs_to_stop(const std::string& dep, int n) {
  // QUEUED first, then RUNNING but not ready, then the oldest RUNNING.
  std::vector<Job> jobs = deployment_jobs(dep, true);
  std::vector<Job> jobs_no_stop;
  for (Job& j : jobs)
    if (!j.stop_requested_at) jobs_no_stop.push_back(j);
  auto rank = [](const Job& j) { return j.state == job_state::kQueued ? 0 : !j.ready_at ? 1 : 2; };
  std::stable_sort(jobs_no_stop.begin(), jobs_no_stop.end(), [&](const Job& a, const Job& b) { return rank(a) < rank(b); });
  if (static_cast<int>(jobs_no_stop.size()) > n) jobs_no_stop.resize(static_cast<size_t>(n));
  return jobs_no_stop;
}

Reply<json> ControlPlane::update_replicas(const Caller& c, const std::string& id, const json& body) {
  std::optional<int64_t> n;
  if (!body.is_object() || !body.contains("replicas")) return bad_request("replicas: required");
  if (auto e = get_int(body, "replicas", n)) return bad_request(*e);
  if (!n || *n < 0 || *n > kMaxReplicas)
    return bad_request(fmt::format("replicas: must be between 0 and {}", kMaxReplicas));
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  const int want = static_cast<int>(*n);
  if (d->status == status::kRunning && d->strategy != strategy::kScheduled) {
    int active = 0;
    for (const Job& j : deployment_jobs(d->id, true))
      if (!j.stop_requested_at) ++active;
    if (want > active) {
      auto m = load_market(d->market);
      auto funds = check_funds(d->owner, mul_div_round(m->price_per_hour, static_cast<int64_t>(want - active) * d->timeout_min, 60));
      if (!funds) return funds.error();
      Task t;
      t.deployment = d->id;
      t.type = "LIST";
      t.limit = want - active;
      t.due_at = now();
      add_task(t, fmt::format("scale:{}:{}:{}", d->id, want, random_id()));
    } else if (want < active) {
      for (Job& j : pick_jobs_to_stop(d->id, active - want)) request_stop(j, "SCALE_DOWN");
    }
  }
  d->replicas = want;
  d->updated_at = now();
  save_deployment(*d);
  if (d->status == status::kRunning) maybe_finish(*d);
  tx.commit();
  emit_deployment(*d);
  return json{{"replicas", d->replicas}, {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::update_timeout(const Caller& c, const std::string& id, const json& body) {
  std::optional<int64_t> t;
  if (!body.is_object() || !body.contains("timeout")) return bad_request("timeout: required");
  if (auto e = get_int(body, "timeout", t)) return bad_request(*e);
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  auto m = load_market(d->market);
  if (auto e = check_timeout(*t, d->strategy, *m)) return bad_request(*e);
  const int64_t old_min = d->timeout_min;
  if (*t > old_min && (d->strategy == strategy::kSimpleExtend || d->strategy == strategy::kInfinite)) {
    // One-time extend of running jobs by the difference, all covered or none.
    std::vector<Job> running;
    for (Job& j : deployment_jobs(d->id, true))
      if (j.state == job_state::kRunning && !j.stop_requested_at) running.push_back(j);
    const int64_t extra_s = (*t - old_min) * 60;
    Micros need = 0;
    for (const Job& j : running) need += cost_for_seconds(j.price_per_hour, extra_s);
    auto funds = check_funds(d->owner, need);
    if (!funds) return funds.error();
    for (Job& j : running) {
      const std::string key = fmt::format("job:{}:timeout:{}:{}", j.id, old_min, *t);
      if (reserve(j, cost_for_seconds(j.price_per_hour, extra_s), key, "job_extend",
                  fmt::format("Timeout raised from {} to {} minutes", old_min, *t))) {
        j.timeout_s += extra_s;
        j.updated_at = now();
        save_job(j);
        add_event(d->id, "JOB_EXTEND_SUCCESSFUL", fmt::format("Job {} extended by {} minutes", j.id, *t - old_min));
      }
    }
  }
  d->timeout_min = static_cast<int>(*t);
  d->updated_at = now();
  save_deployment(*d);
  tx.commit();
  emit_deployment(*d);
  return json{{"timeout", d->timeout_min}, {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::update_schedule(const Caller& c, const std::string& id, const json& body) {
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  if (d->strategy != strategy::kScheduled) return bad_request("Deployment has incorrect strategy.");
  if (!body.is_object() || !body.contains("schedule") || !body["schedule"].is_string())
    return bad_request("schedule: expected string");
  auto cron = parse_cron(body["schedule"].get<std::string>());
  if (!cron) return bad_request(cron.error());
  d->schedule = body["schedule"];
  d->updated_at = now();
  save_deployment(*d);
  if (d->status == status::kRunning || d->status == status::kInsufficientFunds) {
    remove_pending_tasks(d->id, "LIST");
    if (auto next = next_cron_time(*cron, now() / 1000)) {
      Task t;
      t.deployment = d->id;
      t.type = "LIST";
      t.due_at = *next * 1000;
      add_task(t, fmt::format("cron:{}:{}", d->id, *next));
    }
  }
  tx.commit();
  emit_deployment(*d);
  return json{{"schedule", *d->schedule}, {"updated_at", iso8601_ms(d->updated_at)}};
}

void ControlPlane::replace_old_revision_jobs(Deployment& d) {
  // QUEUED jobs on an old revision are withdrawn at once; RUNNING ones keep serving until a
  // replacement on the active revision is READY (on_job_ready then stops one old job each time).
  if (!one_of(d.status, {status::kRunning, status::kStarting})) return;
  int active_new = 0;
  std::vector<Job> old_running;
  for (Job& j : deployment_jobs(d.id, true)) {
    if (j.stop_requested_at) continue;
    if (j.revision == d.active_revision) {
      ++active_new;
    } else if (j.state == job_state::kQueued) {
      end_job(j, job_state::kStopped, "REVISION_CHANGE", std::nullopt, now() / 1000);
    } else {
      old_running.push_back(j);
    }
  }
  const int want = d.replicas - active_new;
  if (want > 0 && d.status == status::kRunning) {
    Task t;
    t.deployment = d.id;
    t.type = "LIST";
    t.limit = want;
    t.active_revision = d.active_revision;
    t.due_at = now();
    add_task(t, fmt::format("revision:{}:{}:{}", d.id, d.active_revision, random_id()));
  } else if (want <= 0) {
    for (Job& j : old_running) request_stop(j, "REVISION_CHANGE");
  }
}

Reply<json> ControlPlane::create_revision(const Caller& c, const std::string& id, const json& body) {
  json jd = body;
  if (body.is_object() && body.contains("job_definition") && !body.contains("ops")) jd = body["job_definition"];
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  auto m = load_market(d->market);
  auto v = validate_for_market(jd, *m);
  if (!v) return v.error();
  jd["deployment_id"] = d->id;
  if (!jd.contains("meta") || !jd["meta"].is_object()) jd["meta"] = json::object();
  jd["meta"]["trigger"] = "deployment-manager";
  Stmt mx = db_.prepare("SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE deployment = ?");
  mx.bind(d->id);
  mx.step();
  const int next = static_cast<int>(mx.i64(0)) + 1;
  db_.prepare("INSERT INTO revisions(deployment, revision, hash, job_definition, created_at) VALUES(?,?,?,?,?)")
      .bind(d->id, next, definition_hash(jd), jd.dump(), now())
      .run();
  d->active_revision = next;
  d->updated_at = now();
  save_deployment(*d);
  add_event(d->id, "REVISION_CREATED", fmt::format("Revision {} created and activated", next), std::nullopt,
            "Deployment");
  replace_old_revision_jobs(*d);
  Stmt all = db_.prepare("SELECT revision FROM revisions WHERE deployment = ? ORDER BY revision");
  all.bind(d->id);
  json revisions = json::array();
  while (all.step()) revisions.push_back(all.i64(0));
  json endpoints = endpoints_json(*d, deployment_jobs(d->id, true));
  tx.commit();
  emit_deployment(*d);
  return json{{"active_revision", next}, {"endpoints", endpoints}, {"revisions", revisions},
              {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::update_active_revision(const Caller& c, const std::string& id, const json& body) {
  std::optional<int64_t> r;
  if (!body.is_object() || !body.contains("active_revision")) return bad_request("active_revision: required");
  if (auto e = get_int(body, "active_revision", r)) return bad_request(*e);
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  if (*r < 1 || !load_revision(d->id, static_cast<int>(*r)))
    return bad_request(fmt::format("active_revision: revision {} does not exist", *r));
  if (d->active_revision != *r) {
    d->active_revision = static_cast<int>(*r);
    d->updated_at = now();
    save_deployment(*d);
    add_event(d->id, "REVISION_ACTIVATED", fmt::format("Revision {} activated", *r), std::nullopt, "Deployment");
    replace_old_revision_jobs(*d);
  }
  json endpoints = endpoints_json(*d, deployment_jobs(d->id, true));
  tx.commit();
  emit_deployment(*d);
  return json{{"active_revision", d->active_revision}, {"endpoints", endpoints},
              {"updated_at", iso8601_ms(d->updated_at)}};
}

Reply<json> ControlPlane::list_jobs(const Caller& c, const std::string& id, const ListQuery& q) {
  auto d = owned(c, id);
  if (!d) return d.error();
  std::vector<json> items;
  const int64_t now_s = now() / 1000;
  for (const Job& j : deployment_jobs(d->id, false)) {
    auto f = [&](const char* k) -> const std::string* {
      auto it = q.filters.find(k);
      return it == q.filters.end() || it->second.empty() ? nullptr : &it->second;
    };
    if (const auto* v = f("state"); v && v->find(j.state) == std::string::npos) continue;
    if (const auto* v = f("job"); v && *v != j.id) continue;
    if (const auto* v = f("revision"); v && *v != std::to_string(j.revision)) continue;
    if (const auto* v = f("created_after"); v && j.created_at <= parse_iso8601_ms(*v)) continue;
    if (const auto* v = f("created_before"); v && j.created_at >= parse_iso8601_ms(*v)) continue;
    items.push_back(job_list_json(j, job_url(j), job_cost(j, now_s)));
  }
  return paginate(std::move(items), q, "jobs");
}

json ControlPlane::job_detail_json(const Job& j) {
  json jd = nullptr;
  if (j.deployment) {
    if (auto rev = load_revision(*j.deployment, j.revision)) jd = rev->job_definition;
  } else if (j.job_definition) {
    jd = json::parse(*j.job_definition);
  }
  const char* flow = j.state == job_state::kQueued    ? "queued"
                     : j.state == job_state::kRunning ? "running"
                     : j.state == job_state::kStopped ? "stopped"
                                                      : (j.exit_code && *j.exit_code != 0 ? "failed" : "success");
  // One op state per op of the definition (the node runs them together, so they share the job's
  // times and exit code), with the op's last 1000 log lines; the per-job endpoint as its secret.
  json op_states = json::array(), secrets = json::object();
  int index = 0;
  bool exposed = false;
  for (const json& op : jd.is_object() ? jd.value("ops", json::array()) : json::array()) {
    if (!op.is_object()) continue;
    const std::string op_id = op.value("id", "");
    Stmt s = db_.prepare("SELECT stream, message FROM logs WHERE job = ? AND op = ? ORDER BY seq DESC LIMIT 1000");
    s.bind(j.id, op_id);
    json logs = json::array();
    while (s.step()) logs.push_back({{"type", s.is_null(0) ? "stdout" : s.text(0)}, {"log", s.text(1)}});
    std::reverse(logs.begin(), logs.end());
    const json group = op.contains("execution") && op["execution"].is_object() ? op["execution"].value("group", json())
                                                                                : json();
    op_states.push_back({{"providerId", j.node ? json(*j.node) : json(nullptr)},
                         {"operationId", op_id},
                         {"group", group},
                         {"status", j.state == job_state::kQueued ? "pending" : flow},
                         {"startTime", j.time_start ? json(*j.time_start) : json(nullptr)},
                         {"endTime", j.time_end ? json(*j.time_end) : json(nullptr)},
                         {"exitCode", j.exit_code ? json(*j.exit_code) : json(nullptr)},
                         {"logs", logs},
                         {"results", json::object()}});
    const std::vector<int> ports = exposed_ports(op.value("args", json::object()));
    if (!ports.empty() && !exposed && j.state != job_state::kQueued) {  // the URL the gateway routes (job_url)
      const std::string label = job_label(index, ports[0], j.id);
      secrets[j.id][label] = {{"opID", op_id}, {"port", ports[0]}, {"url", endpoint_url_for(cfg_, label)},
                              {"status", j.endpoint_status}};
      exposed = true;
    }
    ++index;
  }
  json out{{"confidential", false},
           {"revision", j.revision},
           {"market", j.market},
           {"node", j.node ? json(*j.node) : json(nullptr)},
           {"state", j.state},
           {"jobStatus", j.state},
           {"jobDefinition", jd},
           {"jobResult", {{"status", flow},
                          {"startTime", j.time_start ? json(*j.time_start) : json(nullptr)},
                          {"endTime", j.time_end ? json(*j.time_end) : json(nullptr)},
                          {"errors", json::array()},
                          {"opStates", op_states},
                          {"secrets", secrets}}},
           {"timeStart", j.time_start ? json(*j.time_start) : json(nullptr)},
           {"timeEnd", j.time_end ? json(*j.time_end) : json(nullptr)},
           {"listedAt", j.created_at / 1000}};
  out["job"] = job_list_json(j, job_url(j), job_cost(j, now() / 1000));
  return out;
}

Reply<json> ControlPlane::get_job_detail(const Caller& c, const std::string& id, const std::string& job) {
  auto d = owned(c, id);
  if (!d) return d.error();
  auto j = load_job(job);
  if (!j || j->deployment != d->id) return not_found(fmt::format("Job {} not found", job));
  return job_detail_json(*j);
}

Reply<json> ControlPlane::stop_deployment_job(const Caller& c, const std::string& id, const std::string& job) {
  Tx tx(db_);
  auto d = owned(c, id);
  if (!d) return d.error();
  if (d->status == status::kArchived) return kArchivedError;
  auto j = load_job(job);
  if (!j || j->deployment != d->id) return not_found(fmt::format("Job {} not found", job));
  if (!j->active()) return conflict(fmt::format("Job is in the incorrect state: {} (allowed: QUEUED, RUNNING)", j->state));
  request_stop(*j, "USER_STOP");
  tx.commit();
  return job_list_json(*j, job_url(*j), job_cost(*j, now() / 1000));
}

Reply<json> ControlPlane::list_revisions(const Caller& c, const std::string& id, const ListQuery& q) {
  auto d = owned(c, id);
  if (!d) return d.error();
  Stmt s = db_.prepare("SELECT revision FROM revisions WHERE deployment = ? ORDER BY revision");
  s.bind(d->id);
  std::vector<int> revs;
  while (s.step()) revs.push_back(static_cast<int>(s.i64(0)));
  std::vector<json> items;
  for (int r : revs) items.push_back(to_json(*load_revision(d->id, r)));
  return paginate(std::move(items), q, "revisions");
}

Reply<json> ControlPlane::list_events(const Caller& c, const std::string& id, const ListQuery& q) {
  auto d = owned(c, id);
  if (!d) return d.error();
  Stmt s = db_.prepare(
      "SELECT id, deployment, category, type, message, tx, created_at FROM events WHERE deployment = ? ORDER BY id");
  s.bind(d->id);
  std::vector<json> items;
  while (s.step()) {
    Event e{s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.opt_text(5), s.i64(6)};
    if (auto t = q.filters.find("type"); t != q.filters.end() && !t->second.empty() && t->second != e.type) continue;
    items.push_back(to_json(e));
  }
  return paginate(std::move(items), q, "events");
}


Reply<json> ControlPlane::list_tasks(const Caller& c, const std::string& id, const ListQuery& q) {
  auto d = owned(c, id);
  if (!d) return d.error();
  Stmt s = db_.prepare(
      "SELECT id, deployment, type, job, limit_n, active_revision, due_at, status, attempts, created_at FROM tasks "
      "WHERE deployment = ? ORDER BY due_at, rowid");
  s.bind(d->id);
  std::vector<json> items;
  while (s.step()) items.push_back(to_json(read_task(s)));
  ListQuery asc = q;
  asc.ascending = !q.ascending ? true : q.ascending;  // upcoming tasks read soonest first
  return paginate(std::move(items), asc, "tasks");
}

Reply<std::vector<json>> ControlPlane::stream_snapshot(const Caller& c, const std::string& id) {
  auto d = owned(c, id);
  if (!d) return d.error();
  std::vector<json> out;
  json dep = deployment_json(*d);
  dep["type"] = "deployment";
  out.push_back(dep);
  const int64_t now_s = now() / 1000;
  for (const Job& j : deployment_jobs(d->id, false)) {
    json jj = job_list_json(j, job_url(j), job_cost(j, now_s));
    jj["type"] = "job";
    out.push_back(jj);
  }
  ListQuery all;
  all.limit = 1000;
  json task_list = *list_tasks(c, id, all);
  for (json& t : task_list["tasks"]) {
    t["task_type"] = t["task"];
    t["type"] = "task";
    out.push_back(t);
  }
  ListQuery last;
  last.limit = 20;
  json events = (*list_events(c, id, last))["events"];
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    json e = *it;
    e["event_type"] = e["type"];
    e["type"] = "event";
    out.push_back(e);
  }
  return out;
}

// --- catalogue ---

int ControlPlane::available_nodes(const Market& m) {
  // ONLINE, not draining, serving the market by slug or address.
  Stmt s = db_.prepare("SELECT markets FROM nodes WHERE status = 'ONLINE' AND draining = 0");
  int n = 0;
  while (s.step()) {
    json markets = json::parse(s.text(0));
    for (const json& x : markets)
      if (x == m.slug || x == m.address) {
        ++n;
        break;
      }
  }
  return n;
}

json ControlPlane::list_markets() {
  json out = json::array();
  for (const Market& m : all_markets()) {
    Stmt q = db_.prepare("SELECT COUNT(*) FROM jobs WHERE market = ? AND state = 'QUEUED'");
    q.bind(m.address);
    q.step();
    out.push_back(to_json(m, available_nodes(m), static_cast<int>(q.i64(0))));
  }
  return out;
}

Reply<json> ControlPlane::get_market(const std::string& key) {
  auto m = load_market(key);
  if (!m) return not_found(fmt::format("Market {} not found", key));
  Stmt q = db_.prepare("SELECT COUNT(*) FROM jobs WHERE market = ? AND state = 'QUEUED'");
  q.bind(m->address);
  q.step();
  return to_json(*m, available_nodes(*m), static_cast<int>(q.i64(0)));
}

json ControlPlane::list_templates() {
  json out = json::array();
  for (const Template& t : TemplateCatalog::builtin().templates()) {
    out.push_back(json{{"id", t.id},
                       {"parent", t.parent},
                       {"listed", t.listed},
                       {"name", t.variant_name.empty() ? t.name : t.name + " - " + t.variant_name},
                       {"category", t.category},
                       {"icon", t.icon},
                       {"description", t.description},
                       {"job_definition", json::parse(t.job_definition.dump())},
                       {"readme", t.readme}});
  }
  return out;
}

json ControlPlane::list_template_groups() {
  json out = json::array();
  for (const TemplateGroup& g : TemplateCatalog::builtin().groups()) {
    json variants = json::array();
    for (const Template* t : g.variants)
      variants.push_back(json{{"id", t->variant}, {"name", t->variant_name}, {"description", t->description},
                              {"template", t->id}, {"required_vram_mb", required_vram_mb(json::parse(t->job_definition.dump()))}});
    out.push_back(json{{"id", g.id}, {"name", g.name}, {"category", g.category}, {"icon", g.icon},
                       {"description", g.description}, {"variants", variants}});
  }
  return out;
}

}  // namespace infera::platform
