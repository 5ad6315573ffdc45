// Schema, migrations, seed data and row <-> record mapping of the control plane's SQLite store.
#include <fmt/format.h>

#include "base/check.h"

#include "platform/control_plane.h"

namespace infera::platform {

namespace {

// Append-only: a migration, once shipped, is never edited; the next one goes at the end.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE accounts(id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, admin INTEGER NOT NULL,
  banned INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE TABLE api_keys(id TEXT PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,
  prefix TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, status TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER, last_used_at INTEGER);
CREATE TABLE markets(address TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL, type TEXT NOT NULL,
  kind TEXT NOT NULL, price_per_hour INTEGER NOT NULL, fee_percentage INTEGER NOT NULL, lowest_vram INTEGER NOT NULL,
  gpu_types TEXT NOT NULL, job_timeout INTEGER NOT NULL, job_expiration INTEGER NOT NULL, position INTEGER NOT NULL);
CREATE TABLE deployments(id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, market TEXT NOT NULL,
  status TEXT NOT NULL, strategy TEXT NOT NULL, replicas INTEGER NOT NULL, timeout INTEGER NOT NULL, schedule TEXT,
  rotation_time INTEGER, confidential INTEGER NOT NULL, endpoint_auth INTEGER NOT NULL, active_revision INTEGER NOT NULL,
  startup_timeout INTEGER NOT NULL, next_retry_at INTEGER, rapid_streak INTEGER NOT NULL, template TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX deployments_owner ON deployments(owner, created_at);
CREATE TABLE revisions(deployment TEXT NOT NULL, revision INTEGER NOT NULL, hash TEXT NOT NULL,
  job_definition TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY(deployment, revision));
CREATE TABLE jobs(id TEXT PRIMARY KEY, deployment TEXT, owner TEXT NOT NULL, market TEXT NOT NULL, node TEXT,
  revision INTEGER NOT NULL, state TEXT NOT NULL, phase TEXT NOT NULL, endpoint_status TEXT NOT NULL,
  timeout_s INTEGER NOT NULL, time_start INTEGER, time_end INTEGER, end_reason TEXT, exit_code INTEGER,
  price_per_hour INTEGER NOT NULL, reserved INTEGER NOT NULL, charged INTEGER NOT NULL, extend_count INTEGER NOT NULL,
  stop_requested_at INTEGER, stop_reason TEXT, ready_at INTEGER, tx TEXT NOT NULL, list_key TEXT NOT NULL UNIQUE,
  job_definition TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX jobs_deployment ON jobs(deployment, created_at);
CREATE INDEX jobs_state ON jobs(state, market, created_at);
CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, deployment TEXT NOT NULL, category TEXT NOT NULL,
  type TEXT NOT NULL, message TEXT NOT NULL, tx TEXT, created_at INTEGER NOT NULL);
CREATE INDEX events_deployment ON events(deployment, id);
CREATE TABLE tasks(id TEXT PRIMARY KEY, deployment TEXT NOT NULL, type TEXT NOT NULL, job TEXT, limit_n INTEGER,
  active_revision INTEGER, due_at INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  funds_attempts INTEGER NOT NULL DEFAULT 0, lease_until INTEGER, idem_key TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE INDEX tasks_due ON tasks(status, due_at);
CREATE TABLE ledger(id TEXT PRIMARY KEY, account TEXT NOT NULL, type TEXT NOT NULL, amount INTEGER NOT NULL,
  charge INTEGER NOT NULL, deployment TEXT, job TEXT, description TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL);
CREATE INDEX ledger_account ON ledger(account, created_at);
CREATE TABLE claim_codes(code TEXT PRIMARY KEY, amount INTEGER NOT NULL, created_by TEXT NOT NULL,
  claimed_by TEXT, claimed_at INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql",
    R"sql(
CREATE TABLE nodes(id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, version TEXT NOT NULL,
  markets TEXT NOT NULL, resources TEXT NOT NULL, address TEXT NOT NULL, token_hash TEXT, local INTEGER NOT NULL,
  draining INTEGER NOT NULL DEFAULT 0, last_heartbeat_at INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE join_tokens(hash TEXT PRIMARY KEY, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE TABLE logs(job TEXT NOT NULL, seq INTEGER NOT NULL, deployment TEXT, op TEXT, type TEXT NOT NULL,
  stream TEXT, ts INTEGER NOT NULL, message TEXT NOT NULL, progress TEXT, PRIMARY KEY(job, seq));
CREATE INDEX logs_deployment ON logs(deployment, ts);
ALTER TABLE jobs ADD COLUMN upstreams TEXT;
ALTER TABLE jobs ADD COLUMN last_heartbeat_at INTEGER;
)sql",
};

struct SeedMarket {
  const char* slug;
  const char* name;
  const char* type;
  int vram_gb;
  Micros price;  // user price per hour, fee included
  const char* gpu_type;
  const char* fixed_address;  // the compatible system's address, or nullptr for a fresh id
};

constexpr SeedMarket kSeedMarkets[] = {
    {"nvidia-3060", "NVIDIA 3060", "PREMIUM", 12, 43'600, "NVIDIA GeForce RTX 3060",
     "7AtiXMSH6R1jjBxrcYjehCkkSF7zvYWte63gwEDBcGHq"},
    {"nvidia-4090", "NVIDIA 4090", "PREMIUM", 24, 290'900, "NVIDIA GeForce RTX 4090",
     "97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf"},
    {"nvidia-4090-community", "NVIDIA 4090", "COMMUNITY", 24, 218'200, "NVIDIA GeForce RTX 4090", nullptr},
    {"nvidia-5090", "NVIDIA 5090", "PREMIUM", 32, 363'600, "NVIDIA GeForce RTX 5090", nullptr},
    {"nvidia-h100", "NVIDIA H100", "PREMIUM", 80, 1'363'600, "NVIDIA H100 80GB HBM3", nullptr},
    {"nvidia-8xh100", "8\u00d7 NVIDIA H100", "OTHER", 640, 18'200'000, "NVIDIA H100 80GB HBM3", nullptr},
};

std::string join_json(const std::vector<std::string>& v) { return json(v).dump(); }

}  // namespace

void ControlPlane::migrate() {
  db_.exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
  int64_t have = db_.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  const int64_t want = static_cast<int64_t>(std::size(kMigrations));
  for (int64_t v = have; v < want; ++v) {
    Tx tx(db_);
    db_.exec(kMigrations[v]);
    db_.prepare("INSERT INTO schema_version(version) VALUES(?)").bind(v + 1).run();
    tx.commit();
  }
}

void ControlPlane::seed() {
  Tx tx(db_);
  int pos = 0;
  for (const SeedMarket& m : kSeedMarkets) {
    ++pos;
    if (load_market(m.slug)) continue;
    db_.prepare(
           "INSERT INTO markets(address, slug, name, type, kind, price_per_hour, fee_percentage, lowest_vram, "
           "gpu_types, job_timeout, job_expiration, position) VALUES(?,?,?,?,'GPU',?,10,?,?,6000,86400,?)")
        .bind(m.fixed_address ? std::string(m.fixed_address) : random_id(), m.slug, m.name, m.type, m.price,
              m.vram_gb, join_json({m.gpu_type}), pos)
        .run();
  }
  if (!load_market("local-cpu")) {
    db_.prepare(
           "INSERT INTO markets(address, slug, name, type, kind, price_per_hour, fee_percentage, lowest_vram, "
           "gpu_types, job_timeout, job_expiration, position) VALUES(?, 'local-cpu', 'Local CPU', 'OTHER', 'CPU', ?, "
           "10, 0, '[]', 6000, 86400, 100)")
        .bind(random_id(), cfg_.local_cpu_price_per_hour)
        .run();
  } else {
    db_.prepare("UPDATE markets SET price_per_hour = ? WHERE slug = 'local-cpu'")
        .bind(cfg_.local_cpu_price_per_hour)
        .run();
  }
  tx.commit();
  admin_account_ = ensure_admin();
  // A task that was PROCESSING when the previous process died is retried now (its effects are
  // idempotent); leases matter only between processes sharing the store.
  db_.exec("UPDATE tasks SET status = 'PENDING', lease_until = NULL WHERE status = 'PROCESSING'");
}

namespace {

Market read_market(Stmt& s) {
  Market m;
  m.address = s.text(0);
  m.slug = s.text(1);
  m.name = s.text(2);
  m.type = s.text(3);
  m.kind = s.text(4);
  m.price_per_hour = s.i64(5);
  m.fee_percentage = static_cast<int>(s.i64(6));
  m.lowest_vram_gb = static_cast<int>(s.i64(7));
  m.gpu_types = json::parse(s.text(8)).get<std::vector<std::string>>();
  m.job_timeout_min = static_cast<int>(s.i64(9));
  m.job_expiration_s = static_cast<int>(s.i64(10));
  return m;
}

constexpr const char* kMarketCols =
    "address, slug, name, type, kind, price_per_hour, fee_percentage, lowest_vram, gpu_types, job_timeout, "
    "job_expiration";

constexpr const char* kDeploymentCols =
    "id, name, owner, market, status, strategy, replicas, timeout, schedule, rotation_time, confidential, "
    "endpoint_auth, active_revision, startup_timeout, next_retry_at, rapid_streak, template, created_at, updated_at";

Deployment read_deployment(Stmt& s) {
  Deployment d;
  d.id = s.text(0);
  d.name = s.text(1);
  d.owner = s.text(2);
  d.market = s.text(3);
  d.status = s.text(4);
  d.strategy = s.text(5);
  d.replicas = static_cast<int>(s.i64(6));
  d.timeout_min = static_cast<int>(s.i64(7));
  d.schedule = s.opt_text(8);
  if (auto r = s.opt_i64(9)) d.rotation_time_min = static_cast<int>(*r);
  d.confidential = s.i64(10) != 0;
  d.endpoint_auth = s.i64(11) != 0;
  d.active_revision = static_cast<int>(s.i64(12));
  d.startup_timeout_min = static_cast<int>(s.i64(13));
  d.next_retry_at = s.opt_i64(14);
  d.rapid_streak = static_cast<int>(s.i64(15));
  d.template_id = s.opt_text(16);
  d.created_at = s.i64(17);
  d.updated_at = s.i64(18);
  return d;
}

constexpr const char* kJobCols =
    "id, deployment, owner, market, node, revision, state, phase, endpoint_status, timeout_s, time_start, time_end, "
    "end_reason, exit_code, price_per_hour, reserved, charged, extend_count, stop_requested_at, stop_reason, ready_at, "
    "tx, job_definition, created_at, updated_at";

Job read_job(Stmt& s) {
  Job j;
  j.id = s.text(0);
  j.deployment = s.opt_text(1);
  j.owner = s.text(2);
  j.market = s.text(3);
  j.node = s.opt_text(4);
  j.revision = static_cast<int>(s.i64(5));
  j.state = s.text(6);
  j.phase = s.text(7);
  j.endpoint_status = s.text(8);
  j.timeout_s = s.i64(9);
  j.time_start = s.opt_i64(10);
  j.time_end = s.opt_i64(11);
  j.end_reason = s.opt_text(12);
  if (auto e = s.opt_i64(13)) j.exit_code = static_cast<int>(*e);
  j.price_per_hour = s.i64(14);
  j.reserved = s.i64(15);
  j.charged = s.i64(16);
  j.extend_count = static_cast<int>(s.i64(17));
  j.stop_requested_at = s.opt_i64(18);
  j.stop_reason = s.opt_text(19);
  j.ready_at = s.opt_i64(20);
  j.tx = s.text(21);
  j.job_definition = s.opt_text(22);
  j.created_at = s.i64(23);
  j.updated_at = s.i64(24);
  return j;
}

}  // namespace

std::optional<Market> ControlPlane::load_market(const std::string& key) {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM markets WHERE address = ?1 OR slug = ?1", kMarketCols));
  s.bind(key);
  if (!s.step()) return std::nullopt;
  return read_market(s);
}

std::vector<Market> ControlPlane::all_markets() {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM markets ORDER BY position, slug", kMarketCols));
  std::vector<Market> out;
  while (s.step()) out.push_back(read_market(s));
  return out;
}

std::optional<Deployment> ControlPlane::load_deployment(const std::string& id) {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM deployments WHERE id = ?", kDeploymentCols));
  s.bind(id);
  if (!s.step()) return std::nullopt;
  return read_deployment(s);
}

void ControlPlane::save_deployment(const Deployment& d) {
  db_.prepare(fmt::format("INSERT OR REPLACE INTO deployments({}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                          kDeploymentCols))
      .bind(d.id, d.name, d.owner, d.market, d.status, d.strategy, d.replicas, d.timeout_min, d.schedule,
            d.rotation_time_min, d.confidential, d.endpoint_auth, d.active_revision, d.startup_timeout_min,
            d.next_retry_at, d.rapid_streak, d.template_id, d.created_at, d.updated_at)
      .run();
}

std::optional<Job> ControlPlane::load_job(const std::string& id) {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM jobs WHERE id = ?", kJobCols));
  s.bind(id);
  if (!s.step()) return std::nullopt;
  return read_job(s);
}

void ControlPlane::save_job(const Job& j) {
  // list_key is written once at insert (see task_list / post_job) and never changes.
  int n = db_.prepare(
                 "UPDATE jobs SET node=?, state=?, phase=?, endpoint_status=?, timeout_s=?, time_start=?, time_end=?, "
                 "end_reason=?, exit_code=?, reserved=?, charged=?, extend_count=?, stop_requested_at=?, "
                 "stop_reason=?, ready_at=?, updated_at=? WHERE id=?")
              .bind(j.node, j.state, j.phase, j.endpoint_status, j.timeout_s, j.time_start, j.time_end, j.end_reason,
                    j.exit_code, j.reserved, j.charged, j.extend_count, j.stop_requested_at, j.stop_reason,
                    j.ready_at, j.updated_at, j.id)
              .run();
  CHECK(n == 1);
}

std::vector<Job> ControlPlane::deployment_jobs(const std::string& dep, bool active_only) {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM jobs WHERE deployment = ? {} ORDER BY created_at, rowid", kJobCols,
                                   active_only ? "AND state IN ('QUEUED','RUNNING')" : ""));
  s.bind(dep);
  std::vector<Job> out;
  while (s.step()) out.push_back(read_job(s));
  return out;
}

int ControlPlane::active_job_count(const std::string& dep) {
  Stmt s = db_.prepare("SELECT COUNT(*) FROM jobs WHERE deployment = ? AND state IN ('QUEUED','RUNNING')");
  s.bind(dep);
  s.step();
  return static_cast<int>(s.i64(0));
}

std::optional<Revision> ControlPlane::load_revision(const std::string& dep, int rev) {
  Stmt s = db_.prepare(
      "SELECT deployment, revision, hash, job_definition, created_at FROM revisions WHERE deployment = ? AND "
      "revision = ?");
  s.bind(dep, rev);
  if (!s.step()) return std::nullopt;
  Revision r;
  r.deployment = s.text(0);
  r.revision = static_cast<int>(s.i64(1));
  r.hash = s.text(2);
  r.job_definition = json::parse(s.text(3));
  r.created_at = s.i64(4);
  return r;
}

Task ControlPlane::read_task(Stmt& s) {
  Task t;
  t.id = s.text(0);
  t.deployment = s.text(1);
  t.type = s.text(2);
  t.job = s.opt_text(3);
  if (auto l = s.opt_i64(4)) t.limit = static_cast<int>(*l);
  if (auto r = s.opt_i64(5)) t.active_revision = static_cast<int>(*r);
  t.due_at = s.i64(6);
  t.status = s.text(7);
  t.attempts = static_cast<int>(s.i64(8));
  t.created_at = s.i64(9);
  return t;
}

std::optional<Job> ControlPlane::find_job(const std::string& job) { return load_job(job); }
std::optional<Deployment> ControlPlane::find_deployment(const std::string& id) { return load_deployment(id); }
std::optional<Revision> ControlPlane::find_revision(const std::string& d, int r) { return load_revision(d, r); }

std::vector<Change> ChangeFeed::since(int64_t seq, const std::string& deployment) const {
  std::vector<Change> out;
  for (const Change& c : changes_) {
    if (c.seq <= seq) continue;
    if (!deployment.empty() && c.deployment != deployment) continue;
    out.push_back(c);
  }
  return out;
}

void ChangeFeed::push(const std::string& deployment, json data) {
  changes_.push_back(Change{next_seq_++, deployment, std::move(data)});
  while (changes_.size() > kKeep) changes_.pop_front();
}

}  // namespace infera::platform
