// The control plane (spec platform.md): deployments and their status machine, revisions, jobs,
// tasks and strategies, markets, credits and API keys, over one SQLite store.
//
//   FakeClock clock;
//   auto cp = ControlPlane::open(":memory:", clock, {});
//   Caller admin = (*cp)->admin();
//   auto dep = (*cp)->create_deployment(admin, body);      // Reply<json>: the REST answer
//   (*cp)->tick();                                          // runs due tasks (LIST -> QUEUED jobs)
//
// The public methods mirror the REST routes one to one and answer with the routes' JSON, or an
// ApiError carrying the HTTP status (400/401/402/404/409) and message. Every state change happens
// in one SQLite transaction; side effects of tasks carry idempotency keys, so a crash between two
// steps and the retry that follows never list, extend or charge twice.
//
// Threading: not thread-safe by itself; the platform server calls it from one strand. Time comes
// only from the injected Clock.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "platform/clock.h"
#include "platform/entities.h"
#include "platform/sqlite.h"

namespace infera::platform {

struct ApiError {
  int status = 500;
  std::string message;
};

template <typename T>
class Reply {
 public:
  Reply(T value) : value_(std::move(value)) {}      // NOLINT: implicit by design
  Reply(ApiError e) : error_(std::move(e)) {}       // NOLINT: implicit by design
  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const ApiError& error() const { return error_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  ApiError error_;
};

struct Caller {
  std::string account;
  bool admin = false;
};

struct PlatformConfig {
  std::string public_url = "http://127.0.0.1:8080";  // base of the /e/<label>/ endpoint URLs
  std::string endpoint_domain;                       // non-empty: https://<label>.<domain>/ URLs
  Micros signup_grant = 10 * kMicrosPerDollar;       // "Free credits" of a new account
  Micros local_cpu_price_per_hour = 0;
  std::optional<std::string> admin_key;              // fixed admin API key (INFERA_ADMIN_KEY)
  int64_t node_offline_ms = 30'000;                  // no heartbeat for this long: node OFFLINE
  int64_t node_lost_grace_ms = 60'000;               // then this long more: its jobs end NODE_LOST
  // Tests: called between the steps of a task; throwing simulates a crash at that point.
  std::function<void(const std::string& step)> fault_hook;
};

// Query of a list route: pagination (§8) and filters (route-specific keys).
struct ListQuery {
  std::optional<std::string> cursor;
  int limit = 10;
  bool ascending = false;
  std::map<std::string, std::string> filters;
};

// Recent changes for the SSE stream (§8.3); sequence numbers grow by one per change.
struct Change {
  int64_t seq = 0;
  std::string deployment;
  json data;
};

class ChangeFeed {
 public:
  void push(const std::string& deployment, json data);
  // Changes after `seq` for one deployment ("" = all), oldest first.
  std::vector<Change> since(int64_t seq, const std::string& deployment) const;
  int64_t last_seq() const { return next_seq_ - 1; }

 private:
  static constexpr size_t kKeep = 20000;
  std::deque<Change> changes_;
  int64_t next_seq_ = 1;
};

// A log record of a job (§13). `seq` is assigned by the store, per job, from 1.
struct LogRecord {
  int64_t seq = 0;
  std::string job, op;       // op "" for system lines
  std::string type = "info"; // container | info | error
  std::string stream;        // stdout | stderr for container lines
  int64_t ts = 0;            // Unix ms
  std::string message;
  json progress;             // null, or {"kind","label","done","total"}
  int64_t rowid = 0;         // store order across jobs (merged deployment view)
};
json to_json(const LogRecord& r);

// A job handed to a node: everything it needs to run it.
struct Assignment {
  std::string job;
  std::optional<std::string> deployment;
  json job_definition;
  int64_t remaining_s = 0;       // until the job's paid timeout
  int startup_timeout_min = 30;
};

// What a node says about one of its jobs on each heartbeat.
struct NodeJobReport {
  std::string job;
  std::string phase;              // PREPARING, LOADING, STARTING, READY, UNHEALTHY
  std::string endpoint_status;    // ONLINE, OFFLINE, UNKNOWN
  json upstreams = json::object();  // "<op>:<port>" -> "host:port" the gateway proxies to
  int health_failures = 0;          // continuous health checks failed in a row
};

struct NodeHeartbeat {
  std::string node;
  json resources = json::object();
  std::vector<NodeJobReport> jobs;
  int free_slots = 0;
};

struct NodeOrders {
  std::vector<Assignment> start;
  std::vector<std::string> stop;  // jobs to end now (stop requested, timed out, or unknown here)
};

// Where the gateway sends a request for an endpoint label.
struct EndpointRoute {
  std::string deployment, op;
  int port = 0;
  std::optional<std::string> job;  // per-job URL
};

struct Upstream {
  std::string job, host;
  uint16_t port = 0;
};

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> open(const std::string& db_path, const Clock& clock,
                                                    PlatformConfig config);
  ~ControlPlane();

  // The admin account; the secret of an admin key created by this start (first start only).
  Caller admin() const { return {admin_account_, true}; }
  const std::optional<std::string>& new_admin_key() const { return new_admin_key_; }
  const PlatformConfig& config() const { return cfg_; }
  // Once the port is known (it may have been 0): the base of /e/<label>/ URLs.
  void set_public_url(std::string url) {
    cfg_.public_url = std::move(url);
    label_cache_seq_ = -1;
  }
  ChangeFeed& feed() { return feed_; }

  // --- auth (§15) ---
  Reply<Caller> authenticate(std::string_view authorization_header);

  // --- deployments (§8.1) ---
  Reply<json> create_deployment(const Caller& c, const json& body);
  Reply<json> get_deployment(const Caller& c, const std::string& id);
  Reply<json> list_deployments(const Caller& c, const ListQuery& q);
  Reply<json> start_deployment(const Caller& c, const std::string& id);
  Reply<json> stop_deployment(const Caller& c, const std::string& id);
  Reply<json> archive_deployment(const Caller& c, const std::string& id);
  Reply<json> delete_deployment(const Caller& c, const std::string& id);
  Reply<json> update_name(const Caller& c, const std::string& id, const json& body);
  Reply<json> update_replicas(const Caller& c, const std::string& id, const json& body);
  Reply<json> update_timeout(const Caller& c, const std::string& id, const json& body);
  Reply<json> update_schedule(const Caller& c, const std::string& id, const json& body);
  Reply<json> create_revision(const Caller& c, const std::string& id, const json& body);
  Reply<json> update_active_revision(const Caller& c, const std::string& id, const json& body);
  Reply<json> list_jobs(const Caller& c, const std::string& id, const ListQuery& q);
  Reply<json> get_job_detail(const Caller& c, const std::string& id, const std::string& job);
  Reply<json> stop_deployment_job(const Caller& c, const std::string& id, const std::string& job);
  Reply<json> list_revisions(const Caller& c, const std::string& id, const ListQuery& q);
  Reply<json> list_events(const Caller& c, const std::string& id, const ListQuery& q);
  Reply<json> list_tasks(const Caller& c, const std::string& id, const ListQuery& q);
  // Snapshot of the stream (§8.3): deployment, jobs, pending tasks, last 20 events.
  Reply<std::vector<json>> stream_snapshot(const Caller& c, const std::string& id);

  // --- raw jobs (§8.4) ---
  Reply<json> post_job(const Caller& c, const json& body);
  Reply<json> get_job(const Caller& c, const std::string& job);
  Reply<json> extend_job(const Caller& c, const std::string& job, const json& body);
  Reply<json> stop_job(const Caller& c, const std::string& job);

  // --- catalogue ---
  json list_markets();
  Reply<json> get_market(const std::string& address_or_slug);
  json list_templates();
  json list_template_groups();

  // --- credits and keys (§14, §15) ---
  Reply<json> balance(const Caller& c);
  Reply<json> transactions(const Caller& c, const ListQuery& q);
  Reply<json> grant(const Caller& c, const json& body);
  Reply<json> create_claim_code(const Caller& c, const json& body);
  Reply<json> claim(const Caller& c, const json& body);
  Reply<json> list_api_keys(const Caller& c, const ListQuery& q);
  Reply<json> create_api_key(const Caller& c, const json& body);
  Reply<json> update_api_key(const Caller& c, const std::string& id, const json& body);
  Reply<json> delete_api_key(const Caller& c, const std::string& id);
  Balance account_balance(const std::string& account);

  // --- node side (used by the node runtime; tests drive it directly) ---
  // The oldest QUEUED job of one of `markets` becomes RUNNING on `node`.
  std::optional<Job> claim_job(const std::string& node, const std::vector<std::string>& markets);
  // Phase / endpoint status of a RUNNING job ("READY" marks it ready).
  Status report_job_phase(const std::string& job, const std::string& phase, const std::string& endpoint_status);
  // The job's process ended (or was stopped on request): final state, settlement, strategy.
  // `reason` overrides the derived end reason (e.g. "CRASH_LOOP").
  Status report_job_exit(const std::string& job, std::optional<int> exit_code, std::optional<std::string> reason = {});
  // Jobs the node must stop now (stop requested, not yet confirmed).
  std::vector<Job> jobs_to_stop(const std::string& node);
  std::optional<Job> find_job(const std::string& job);
  // STOPPED, ERROR or ARCHIVED with no job still active: its logs are complete.
  bool deployment_ended(const std::string& deployment);
  std::optional<Deployment> find_deployment(const std::string& id);
  std::optional<Revision> find_revision(const std::string& deployment, int revision);

  // --- nodes (§16) ---
  // Registers (or re-registers by name for the local node) and returns the node id.
  std::string register_node(const std::string& name, const std::vector<std::string>& markets, const json& resources,
                            const std::string& address, bool local, const std::string& version);
  NodeOrders node_heartbeat(const NodeHeartbeat& hb);
  Reply<json> list_nodes(const Caller& c);
  Reply<json> get_node(const Caller& c, const std::string& id);
  Reply<json> drain_node(const Caller& c, const std::string& id);
  Reply<json> create_join_token(const Caller& c);
  // Validates a join token for `infera node run`; true when valid.
  bool check_join_token(const std::string& token);
  bool node_token_valid(const std::string& node, const std::string& token);
  std::string issue_node_token(const std::string& node);

  // --- logs (§13) ---
  void append_logs(const std::string& job, std::vector<LogRecord> records);
  void sys_log(const std::string& job, const std::string& message, const char* type = "info");
  // Records of one job (or of every job of a deployment when job is empty) after `since_seq`.
  Reply<json> read_logs(const Caller& c, const std::string& deployment, const std::string& job, int64_t since_seq,
                        int limit, const std::string& op, const std::string& type);
  // Raw access for SSE follow: records after the cursor; cursor = (ts, job, seq) merged order.
  std::vector<LogRecord> logs_after(const std::string& deployment, const std::string& job, int64_t after_rowid,
                                    int limit, int64_t* last_rowid);

  // --- gateway (§11) ---
  std::optional<EndpointRoute> resolve_label(const std::string& label);
  std::vector<Upstream> upstreams(const EndpointRoute& r);
  // 503 message for a deployment that has no ready replica, or "" when unknown/archived (404).
  std::string not_ready_message(const std::string& deployment, bool* starting);
  bool endpoint_auth_required(const std::string& deployment, std::string* owner);

  // --- reconciler ---
  // One pass: STARTING -> RUNNING, due tasks, job timeouts, expirations, startup deadlines,
  // unconfirmed stops, STOPPING -> STOPPED. Idempotent; the server calls it every second.
  void tick();
  // Counts for /metrics.
  json stats();

 private:
  ControlPlane(Db db, const Clock& clock, PlatformConfig cfg);
  void migrate();
  void seed();
  void fault(const std::string& step);
  int64_t now() const { return clock_.now_ms(); }

  // store access
  std::optional<Deployment> load_deployment(const std::string& id);
  void save_deployment(const Deployment& d);
  std::optional<Job> load_job(const std::string& id);
  void save_job(const Job& j);
  std::vector<Job> deployment_jobs(const std::string& dep, bool active_only);
  std::optional<Market> load_market(const std::string& address_or_slug);
  int available_nodes(const Market& m);
  std::vector<Market> all_markets();
  std::optional<Revision> load_revision(const std::string& dep, int rev);
  // A tasks row selected as "id, deployment, type, job, limit_n, active_revision, due_at, status,
  // attempts, created_at".
  static Task read_task(Stmt& s);
  int active_job_count(const std::string& dep);

  // building blocks (each inside the caller's transaction)
  Reply<Deployment> owned(const Caller& c, const std::string& id);
  json deployment_json(const Deployment& d);
  json job_detail_json(const Job& j);
  std::vector<json> endpoints_json(const Deployment& d, const std::vector<Job>& jobs);
  std::optional<std::string> job_url(const Job& j);
  void set_status(Deployment& d, const char* to, const std::string& why = "");
  void add_event(const std::string& dep, const std::string& type, const std::string& message,
                 const std::optional<std::string>& tx = std::nullopt, const char* category = "Event");
  void add_task(const Task& t, const std::string& idem_key);
  void remove_pending_tasks(const std::string& dep, const std::string& type = "");
  void emit_deployment(const Deployment& d);
  void emit_job(const Job& j);
  Reply<json> validate_for_market(const json& jd, const Market& m);
  Reply<bool> check_funds(const std::string& account, Micros need);
  bool ledger_add(const LedgerEntry& e);  // false when the idempotency key exists
  bool reserve(Job& j, Micros amount, const std::string& key, const char* type, const std::string& description);
  void settle(Job& j);
  void end_job(Job& j, const char* state, const std::string& reason, std::optional<int> exit_code, int64_t end_s);
  void request_stop(Job& j, const std::string& reason);
  void after_job_end(const Job& j);
  void on_job_running(const Job& j, Deployment& d);
  void on_job_ready(const Job& j);
  void maybe_finish(Deployment& d);
  std::vector<Job> pick_jobs_to_stop(const std::string& dep, int n);
  void replace_old_revision_jobs(Deployment& d);

  // tasks
  void run_task(Task t);
  enum class TaskOutcome { kDone, kFundsError, kRetry };
  TaskOutcome task_list(const Task& t, std::string& err);
  TaskOutcome task_extend(const Task& t, std::string& err);
  TaskOutcome task_stop(const Task& t, std::string& err);

  // accounts and keys
  std::string ensure_admin();
  std::string create_key_row(const std::string& account, const std::string& name, std::optional<int64_t> expires_at,
                             const std::optional<std::string>& fixed_secret);

  Db db_;
  const Clock& clock_;
  PlatformConfig cfg_;
  ChangeFeed feed_;
  std::string admin_account_;
  std::map<std::string, EndpointRoute> label_cache_;
  int64_t label_cache_seq_ = -1;
  std::optional<std::string> new_admin_key_;
};

// Common route errors.
inline ApiError bad_request(std::string m) { return {400, std::move(m)}; }
inline ApiError not_found(std::string m) { return {404, std::move(m)}; }
inline ApiError conflict(std::string m) { return {409, std::move(m)}; }

}  // namespace infera::platform
