// The reconciler: task queue (LIST / EXTEND / STOP), strategies, job timers, job ends with their
// settlement, and the node-facing job transitions (claim, phase, exit).
#include <algorithm>

#include <fmt/format.h>

#include "base/check.h"
#include "platform/control_plane.h"
#include "platform/cron.h"
#include "platform/job_definition.h"

namespace infera::platform {

namespace {

constexpr int64_t kTaskLeaseMs = 120'000;
constexpr int kMaxTaskFailures = 60;
constexpr int64_t kStopConfirmGraceS = 60;
constexpr int64_t kRapidJobS = 300;
constexpr int kRapidRoundsFailSafe = 8;

int64_t retry_delay_ms(int attempt) {  // handled errors: min(30 s * 2^n, 10 min)
  int64_t d = 30'000;
  for (int i = 1; i < attempt && d < 600'000; ++i) d *= 2;
  return std::min<int64_t>(d, 600'000);
}

int64_t funds_delay_ms(int attempt) {  // funds errors: min(10 min * 2^n, 6 h)
  int64_t d = 600'000;
  for (int i = 1; i < attempt && d < 21'600'000; ++i) d *= 2;
  return std::min<int64_t>(d, 21'600'000);
}

// buffer = clamp(0.1 T, 60 s, 300 s)
int64_t extend_buffer_s(int64_t t) { return std::clamp<int64_t>(t / 10, 60, 300); }

bool safety_reason(const std::optional<std::string>& r) {
  return r && (*r == "STARTUP_TIMEOUT" || *r == "CRASH_LOOP");
}

bool user_reason(const std::optional<std::string>& r) {
  return r && (*r == "USER_STOP" || *r == "SCALE_DOWN" || *r == "ROTATION" || *r == "REVISION_CHANGE" || *r == "EXPIRED");
}


}  // namespace

// --- job transitions ---

void ControlPlane::end_job(Job& j, const char* state, const std::string& reason, std::optional<int> exit_code,
                           int64_t end_s) {
  if (!j.active()) return;
  j.state = state;
  if (j.time_start) {
    end_s = std::max(end_s, *j.time_start);
    end_s = std::min(end_s, *j.time_start + j.timeout_s);  // never billed past the paid lifetime
  }
  j.time_end = end_s;
  j.end_reason = reason;
  j.exit_code = exit_code;
  j.phase = "EXITED";
  j.endpoint_status = "OFFLINE";
  j.updated_at = now();
  settle(j);
  save_job(j);
  emit_job(j);
  sys_log(j.id, fmt::format("Job ended {} ({}{}); charged {}", state, reason,
                            exit_code ? fmt::format(", exit code {}", *exit_code) : "", format_usd(j.charged, 6)),
          std::string(state) == job_state::kStopped && reason != "USER_STOP" && reason != "SCALE_DOWN" &&
                  reason != "ROTATION" && reason != "REVISION_CHANGE"
              ? "error"
              : "info");
  if (j.deployment) {
    std::string type = "JOB_STOPPED_CONFIRMED";
    if (reason == "EXPIRED") type = "JOB_EXPIRED";
    else if (reason == "CRASH_LOOP") type = "JOB_CRASH_LOOP";
    else if (reason == "STARTUP_TIMEOUT") type = "JOB_STOPPED_CONFIRMED";
    else if (reason == "NODE_LOST") type = "NODE_LOST";
    else if (std::string(state) == job_state::kCompleted) type = reason == "TIMEOUT" ? "JOB_COMPLETED" : "JOB_EXITED";
    std::string msg = fmt::format("Job {} ended {} ({})", j.id, state, reason);
    if (exit_code) msg += fmt::format(", exit code {}", *exit_code);
    msg += fmt::format("; charged {}", format_usd(j.charged, 4));
    add_event(*j.deployment, type, msg, "task:" + j.id);
  }
  db_.prepare("DELETE FROM tasks WHERE job = ?").bind(j.id).run();
  after_job_end(j);
}

void ControlPlane::request_stop(Job& j, const std::string& reason) {
  if (!j.active()) return;
  if (j.state == job_state::kQueued) {
    end_job(j, job_state::kStopped, reason, std::nullopt, now() / 1000);
    return;
  }
  if (j.stop_requested_at) return;  // already asked; the node is told again on its next poll
  sys_log(j.id, fmt::format("Stop requested ({})", reason));
  j.stop_requested_at = now();
  j.stop_reason = reason;
  j.updated_at = now();
  save_job(j);
  emit_job(j);
  if (j.deployment) add_event(*j.deployment, "JOB_STOP_REQUESTED", fmt::format("Stopping job {} ({})", j.id, reason));
}

void ControlPlane::maybe_finish(Deployment& d) {
  auto fresh = load_deployment(d.id);
  if (!fresh) return;
  d = *fresh;
  const int active = active_job_count(d.id);
  if (d.status == status::kStopping) {
    if (active == 0) set_status(d, status::kStopped, "no active jobs left");
    return;
  }
  if (d.strategy != strategy::kSimple && d.strategy != strategy::kSimpleExtend) return;
  if ((d.status != status::kRunning && d.status != status::kInsufficientFunds) || active > 0) return;
  if (db_.prepare("SELECT 1 FROM tasks WHERE deployment = ? AND type = 'LIST'").bind(d.id).step()) return;
  // Every job ended. A deployment none of whose jobs ever became ready, ended by a safety stop,
  // is an ERROR with the reason; otherwise it simply finished.
  Stmt s = db_.prepare(
      "SELECT COUNT(*), SUM(ready_at IS NOT NULL), MAX(CASE WHEN end_reason IN ('STARTUP_TIMEOUT','CRASH_LOOP') "
      "THEN end_reason END) FROM jobs WHERE deployment = ?");
  s.bind(d.id);
  s.step();
  if (s.i64(0) > 0 && s.i64(1) == 0 && !s.is_null(2)) {
    std::string reason = s.text(2);
    set_status(d, status::kError,
               reason == "STARTUP_TIMEOUT"
                   ? fmt::format("no replica became ready within the start-up deadline ({} min)", d.startup_timeout_min)
                   : "the replica crashed repeatedly without becoming ready (CRASH_LOOP)");
    return;
  }
  set_status(d, status::kStopped, "all jobs ended");
}

void ControlPlane::after_job_end(const Job& j) {
  if (!j.deployment) return;
  auto d = load_deployment(*j.deployment);
  if (!d) return;
  if (d->strategy == strategy::kInfinite && d->status == status::kRunning) {
    // Rapid-completion fail-safe: the last replicas x 3 ended jobs all ran < 5 min.
    const int window = d->replicas * 3;
    Stmt s = db_.prepare(
        "SELECT time_start, time_end, end_reason FROM jobs WHERE deployment = ? AND state IN ('COMPLETED','STOPPED') "
        "ORDER BY updated_at DESC, rowid DESC LIMIT ?");
    s.bind(d->id, window);
    int n = 0, rapid = 0;
    while (s.step()) {
      ++n;
      auto reason = s.opt_text(2);
      const int64_t ran = s.is_null(0) ? 0 : s.i64(1) - s.i64(0);
      if (safety_reason(reason) || (!user_reason(reason) && !s.is_null(0) && ran < kRapidJobS)) ++rapid;
    }
    int64_t delay_ms = 0;
    if (window > 0 && n >= window && rapid == n && !user_reason(j.end_reason)) {
      d->rapid_streak += 1;
      d->updated_at = now();
      save_deployment(*d);
      if (d->rapid_streak >= kRapidRoundsFailSafe) {
        add_event(d->id, "RAPID_COMPLETION_FAIL_SAFE",
                  fmt::format("Stopped to protect funds: {} rounds of jobs ending within 5 minutes", d->rapid_streak));
        remove_pending_tasks(d->id);
        set_status(*d, status::kStopping, "rapid-completion fail-safe");
        for (Job& other : deployment_jobs(d->id, true)) request_stop(other, "USER_STOP");
        maybe_finish(*d);
        return;
      }
      delay_ms = std::min<int64_t>(60'000LL << (d->rapid_streak - 1), 3'600'000);
      add_event(d->id, "RAPID_COMPLETION_THROTTLE",
                fmt::format("Jobs keep ending within 5 minutes; next job in {} s (round {})", delay_ms / 1000,
                            d->rapid_streak));
    } else if (!user_reason(j.end_reason) && d->rapid_streak != 0) {
      d->rapid_streak = 0;
      save_deployment(*d);
    }
    int active = 0;
    for (const Job& a : deployment_jobs(d->id, true))
      if (!a.stop_requested_at) ++active;
    if (active < d->replicas) {
      Task t;
      t.deployment = d->id;
      t.type = "LIST";
      t.limit = d->replicas - active;
      t.due_at = now() + delay_ms;
      add_task(t, fmt::format("topup:{}", j.id));
    }
    emit_deployment(*d);
    return;
  }
  maybe_finish(*d);
  emit_deployment(*d);
}

void ControlPlane::on_job_running(const Job& j, Deployment& d) {
  add_event(d.id, "JOB_ASSIGNED", fmt::format("Job {} assigned to node {}", j.id, j.node.value_or("?")));
  const int64_t start_ms = *j.time_start * 1000;
  if (d.strategy == strategy::kSimpleExtend) {
    Task t;
    t.deployment = d.id;
    t.type = "EXTEND";
    t.job = j.id;
    t.due_at = start_ms + (j.timeout_s - extend_buffer_s(j.timeout_s)) * 1000;
    add_task(t, fmt::format("extend:{}:1", j.id));
  } else if (d.strategy == strategy::kInfinite) {
    Task t;
    t.deployment = d.id;
    t.type = "LIST";
    t.job = j.id;
    t.limit = 1;
    t.due_at = start_ms + (j.timeout_s - static_cast<int64_t>(d.rotation_time_min.value_or(20)) * 60) * 1000;
    add_task(t, fmt::format("rotate:{}", j.id));
  }
}

void ControlPlane::on_job_ready(const Job& j) {
  if (!j.deployment) return;
  auto d = load_deployment(*j.deployment);
  if (!d) return;
  add_event(d->id, "JOB_READY", fmt::format("Job {} is ready and receives traffic", j.id));
  std::vector<Job> others;
  for (Job& o : deployment_jobs(d->id, true))
    if (o.id != j.id && o.state == job_state::kRunning && !o.stop_requested_at) others.push_back(o);
  // Make-before-break: a ready job on the active revision retires one job of an older revision;
  // for INFINITE, a ready replacement retires the oldest job beyond the replica count.
  if (j.revision == d->active_revision) {
    for (Job& o : others) {
      if (o.revision != d->active_revision) {
        request_stop(o, "REVISION_CHANGE");
        emit_deployment(*d);
        return;
      }
    }
  }
  if (d->strategy == strategy::kInfinite && static_cast<int>(others.size()) + 1 > d->replicas && !others.empty())
    request_stop(others.front(), "ROTATION");
  emit_deployment(*d);
}

// --- node side ---

std::optional<Job> ControlPlane::claim_job(const std::string& node, const std::vector<std::string>& markets) {
  Tx tx(db_);
  for (const std::string& key : markets) {
    auto m = load_market(key);
    if (!m) continue;
    Stmt s = db_.prepare("SELECT id FROM jobs WHERE market = ? AND state = 'QUEUED' ORDER BY created_at, rowid LIMIT 1");
    s.bind(m->address);
    if (!s.step()) continue;
    Job j = *load_job(s.text(0));
    j.state = job_state::kRunning;
    j.node = node;
    j.time_start = now() / 1000;
    j.phase = "ASSIGNED";
    j.updated_at = now();
    save_job(j);
    emit_job(j);
    if (j.deployment) {
      if (auto d = load_deployment(*j.deployment)) {
        on_job_running(j, *d);
        emit_deployment(*d);
      }
    }
    tx.commit();
    return j;
  }
  return std::nullopt;
}

Status ControlPlane::report_job_phase(const std::string& id, const std::string& phase,
                                      const std::string& endpoint_status) {
  Tx tx(db_);
  auto j = load_job(id);
  if (!j) return error("job {} not found", id);
  if (j->state != job_state::kRunning) return error("job {} is {}, not RUNNING", id, j->state);
  const std::string before = j->endpoint_status;
  j->phase = phase;
  j->endpoint_status = endpoint_status;
  const bool became_ready = phase == "READY" && !j->ready_at;
  if (became_ready) j->ready_at = now();
  j->updated_at = now();
  save_job(*j);
  emit_job(*j);
  if (j->deployment && j->ready_at && !became_ready && before != endpoint_status) {
    if (endpoint_status == "OFFLINE") add_event(*j->deployment, "JOB_UNHEALTHY", fmt::format("Job {} endpoint is failing its health checks", id));
    else if (endpoint_status == "ONLINE") add_event(*j->deployment, "JOB_RECOVERED", fmt::format("Job {} endpoint recovered", id));
  }
  if (became_ready) on_job_ready(*j);
  else if (j->deployment) {
    if (auto d = load_deployment(*j->deployment)) emit_deployment(*d);
  }
  tx.commit();
  return Status::ok();
}

Status ControlPlane::report_job_exit(const std::string& id, std::optional<int> exit_code,
                                     std::optional<std::string> reason) {
  Tx tx(db_);
  auto j = load_job(id);
  if (!j) return error("job {} not found", id);
  if (!j->active()) return Status::ok();  // already final (e.g. timed out): nothing to do
  const int64_t end_s = now() / 1000;
  if (j->stop_requested_at) {
    end_job(*j, job_state::kStopped, j->stop_reason.value_or("USER_STOP"), exit_code, end_s);
  } else if (reason && (*reason == "CRASH_LOOP" || *reason == "STARTUP_TIMEOUT" || *reason == "NODE_LOST")) {
    end_job(*j, job_state::kStopped, *reason, exit_code, end_s);
  } else if (reason) {
    end_job(*j, job_state::kCompleted, *reason, exit_code, end_s);
  } else {
    end_job(*j, job_state::kCompleted, exit_code && *exit_code == 0 ? "EXITED" : "FAILED", exit_code, end_s);
  }
  tx.commit();
  return Status::ok();
}

std::vector<Job> ControlPlane::jobs_to_stop(const std::string& node) {
  Stmt s = db_.prepare("SELECT id FROM jobs WHERE node = ? AND state = 'RUNNING' AND stop_requested_at IS NOT NULL");
  s.bind(node);
  std::vector<std::string> ids;
  while (s.step()) ids.push_back(s.text(0));
  std::vector<Job> out;
  for (const auto& id : ids) out.push_back(*load_job(id));
  return out;
}

// --- tasks ---

ControlPlane::TaskOutcome ControlPlane::task_list(const Task& t, std::string& err) {
  auto d0 = load_deployment(t.deployment);
  if (!d0 || (d0->status != status::kRunning && d0->status != status::kInsufficientFunds)) return TaskOutcome::kDone;
  auto market = load_market(d0->market);
  if (!market) {
    err = "market of the deployment no longer exists";
    return TaskOutcome::kRetry;
  }
  const std::string tx_id = "task:" + t.id;
  auto listed_by_task = [&] {
    Stmt s = db_.prepare("SELECT COUNT(*) FROM jobs WHERE tx = ?");
    s.bind(tx_id);
    s.step();
    return static_cast<int>(s.i64(0));
  };
  for (;;) {
    Tx tx(db_);
    auto d = load_deployment(t.deployment);
    const int done = listed_by_task();
    int want;
    if (t.limit) {
      want = *t.limit - done;
    } else if (d->strategy == strategy::kSimple || d->strategy == strategy::kSimpleExtend) {
      int active = 0;
      for (const Job& a : deployment_jobs(d->id, true))
        if (!a.stop_requested_at) ++active;
      want = d->replicas - active;
    } else {
      want = d->replicas - done;
    }
    if (want <= 0) break;
    Job j;
    j.id = random_id();
    j.deployment = d->id;
    j.owner = d->owner;
    j.market = d->market;
    j.revision = d->active_revision;
    j.timeout_s = static_cast<int64_t>(d->timeout_min) * 60;
    j.price_per_hour = market->price_per_hour;
    j.tx = tx_id;
    j.created_at = j.updated_at = now();
    const Micros cost = cost_for_seconds(j.price_per_hour, j.timeout_s);
    // Insert first (the reservation's ledger row names the job), then reserve.
    db_.prepare(
           "INSERT INTO jobs(id, deployment, owner, market, revision, state, phase, endpoint_status, timeout_s, "
           "price_per_hour, reserved, charged, extend_count, tx, list_key, created_at, updated_at) "
           "VALUES(?,?,?,?,?,'QUEUED','QUEUED','OFFLINE',?,?,0,0,0,?,?,?,?)")
        .bind(j.id, *j.deployment, j.owner, j.market, j.revision, j.timeout_s, j.price_per_hour, j.tx,
              fmt::format("{}:{}", t.id, done), j.created_at, j.updated_at)
        .run();
    if (!reserve(j, cost, fmt::format("job:{}:debit", j.id), "job_debit",
                 fmt::format("Reserved {} min at {}/h", d->timeout_min, format_usd(j.price_per_hour, 4)))) {
      Balance b = account_balance(d->owner);
      err = fmt::format("Insufficient credits. Need {}, have {}", format_usd(cost, 3),
                        format_usd(std::max<Micros>(0, b.available), 2, true));
      return TaskOutcome::kFundsError;  // the transaction rolls back the job row
    }
    save_job(j);
    sys_log(j.id, fmt::format("Job listed on market {} (revision {}, timeout {} min): queued, waiting for a node",
                              market->slug, j.revision, d->timeout_min));
    add_event(d->id, "JOB_LIST_CONFIRMED", fmt::format("Job {} listed on market {} (revision {}, {} min)", j.id,
                                                      market->slug, j.revision, d->timeout_min),
              tx_id);
    emit_job(j);
    fault("list:before-commit");
    tx.commit();
    fault("list:after-job");
  }
  Tx tx(db_);
  auto d = load_deployment(t.deployment);
  if (d->strategy == strategy::kScheduled && d->schedule && !t.limit) {
    auto cron = parse_cron(*d->schedule);
    if (cron) {
      if (auto next = next_cron_time(*cron, std::max(t.due_at, now()) / 1000)) {
        Task n;
        n.deployment = d->id;
        n.type = "LIST";
        n.due_at = *next * 1000;
        add_task(n, fmt::format("cron:{}:{}", d->id, *next));
      }
    }
  }
  if (d->status == status::kInsufficientFunds) {
    d->next_retry_at.reset();
    set_status(*d, status::kRunning, "credits cover the jobs again");
  }
  emit_deployment(*d);
  tx.commit();
  return TaskOutcome::kDone;
}

ControlPlane::TaskOutcome ControlPlane::task_extend(const Task& t, std::string& err) {
  Tx tx(db_);
  auto j = t.job ? load_job(*t.job) : std::nullopt;
  auto d = load_deployment(t.deployment);
  if (!j || !d || j->state != job_state::kRunning || j->stop_requested_at) return TaskOutcome::kDone;
  if (d->status != status::kRunning && d->status != status::kInsufficientFunds) return TaskOutcome::kDone;
  const int64_t ext_s = static_cast<int64_t>(d->timeout_min) * 60;
  const int n = j->extend_count + 1;
  const Micros cost = cost_for_seconds(j->price_per_hour, ext_s);
  if (!reserve(*j, cost, fmt::format("job:{}:extend:{}", j->id, n), "job_extend",
               fmt::format("Extension {} of job {}: {} min", n, j->id, d->timeout_min))) {
    Balance b = account_balance(d->owner);
    err = fmt::format("Insufficient credits. Need {}, have {}", format_usd(cost, 3),
                      format_usd(std::max<Micros>(0, b.available), 2, true));
    add_event(d->id, "JOB_EXTEND_ERROR", fmt::format("Job {} could not be extended: {}", j->id, err));
    tx.commit();
    return TaskOutcome::kFundsError;
  }
  j->timeout_s += ext_s;
  j->extend_count = n;
  j->updated_at = now();
  save_job(*j);
  add_event(d->id, "JOB_EXTEND_SUCCESSFUL", fmt::format("Job {} extended by {} min (extension {})", j->id, d->timeout_min, n));
  Task next;
  next.deployment = d->id;
  next.type = "EXTEND";
  next.job = j->id;
  next.due_at = now() + ext_s * 1000;
  add_task(next, fmt::format("extend:{}:{}", j->id, n + 1));
  if (d->status == status::kInsufficientFunds) {
    d->next_retry_at.reset();
    set_status(*d, status::kRunning, "credits cover the extension");
  }
  emit_job(*j);
  fault("extend:before-commit");
  tx.commit();
  return TaskOutcome::kDone;
}

ControlPlane::TaskOutcome ControlPlane::task_stop(const Task& t, std::string& err) {
  Tx tx(db_);
  int n = t.limit.value_or(1);
  if (t.job) {
    if (auto j = load_job(*t.job)) request_stop(*j, "USER_STOP");
  } else {
    for (Job& j : pick_jobs_to_stop(t.deployment, n)) request_stop(j, "SCALE_DOWN");
  }
  tx.commit();
  return TaskOutcome::kDone;
}

void ControlPlane::run_task(Task t) {
  {
    Tx tx(db_);
    int n = db_.prepare("UPDATE tasks SET status = 'PROCESSING', lease_until = ?, attempts = attempts + 1 WHERE id = ? "
                        "AND status = 'PENDING'")
                .bind(now() + kTaskLeaseMs, t.id)
                .run();
    if (n == 0) return;
    tx.commit();
  }
  fault("task:claimed");
  std::string err;
  TaskOutcome out;
  try {
    out = t.type == "LIST" ? task_list(t, err) : t.type == "EXTEND" ? task_extend(t, err) : task_stop(t, err);
  } catch (const SqlError& e) {
    err = e.what();
    out = TaskOutcome::kRetry;
  }
  Tx tx(db_);
  if (out == TaskOutcome::kDone) {
    db_.prepare("DELETE FROM tasks WHERE id = ?").bind(t.id).run();
    tx.commit();
    return;
  }
  auto d = load_deployment(t.deployment);
  if (out == TaskOutcome::kFundsError) {
    Stmt s = db_.prepare("UPDATE tasks SET funds_attempts = funds_attempts + 1 WHERE id = ? RETURNING funds_attempts");
    s.bind(t.id);
    const int attempt = s.step() ? static_cast<int>(s.i64(0)) : 1;
    while (s.step()) {
    }
    const int64_t due = now() + funds_delay_ms(attempt);
    db_.prepare("UPDATE tasks SET status = 'PENDING', lease_until = NULL, attempts = 0, due_at = ? WHERE id = ?")
        .bind(due, t.id)
        .run();
    if (d) {
      d->next_retry_at = due;
      d->updated_at = now();
      save_deployment(*d);
      add_event(d->id, "INSUFFICIENT_CREDITS", fmt::format("{}; retrying at {}", err, iso8601_ms(due)));
      if (d->status == status::kRunning) set_status(*d, status::kInsufficientFunds, err);
      else emit_deployment(*d);
    }
    tx.commit();
    return;
  }
  // Handled error: retry on the ladder; abandon after 60 failures in a row.
  Stmt s = db_.prepare("SELECT attempts FROM tasks WHERE id = ?");
  s.bind(t.id);
  const int attempts = s.step() ? static_cast<int>(s.i64(0)) : kMaxTaskFailures;
  if (attempts >= kMaxTaskFailures) {
    db_.prepare("DELETE FROM tasks WHERE id = ?").bind(t.id).run();
    if (d) {
      add_event(d->id, t.type == "LIST" ? "JOB_LIST_ERROR" : t.type == "EXTEND" ? "JOB_EXTEND_ERROR" : "JOB_STOP_ERROR",
                fmt::format("Task {} abandoned after {} failures: {}", t.type, attempts, err));
      set_status(*d, status::kError, fmt::format("task {} failed {} times: {}", t.type, attempts, err));
    }
  } else {
    const int64_t due = now() + retry_delay_ms(attempts);
    db_.prepare("UPDATE tasks SET status = 'PENDING', lease_until = NULL, due_at = ? WHERE id = ?").bind(due, t.id).run();
    if (d) {
      d->next_retry_at = due;
      save_deployment(*d);
      add_event(d->id, t.type == "LIST" ? "JOB_LIST_ERROR" : t.type == "EXTEND" ? "JOB_EXTEND_ERROR" : "JOB_STOP_ERROR",
                fmt::format("Task {} failed (attempt {}): {}", t.type, attempts, err));
    }
  }
  tx.commit();
}

void ControlPlane::tick() {
  const int64_t t_ms = now();
  const int64_t t_s = t_ms / 1000;
  auto ids = [&](const char* sql, auto... binds) {
    Stmt s = db_.prepare(sql);
    if constexpr (sizeof...(binds) > 0) s.bind(binds...);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  };

  // STARTING -> RUNNING: the first LIST task is queued (SCHEDULED: at the next firing).
  for (const std::string& id : ids("SELECT id FROM deployments WHERE status = 'STARTING' ORDER BY created_at")) {
    Tx tx(db_);
    auto d = load_deployment(id);
    if (!d || d->status != status::kStarting) continue;
    Task t;
    t.deployment = d->id;
    t.type = "LIST";
    t.due_at = t_ms;
    std::string key = fmt::format("start:{}:{}", d->id, d->updated_at);
    if (d->strategy == strategy::kScheduled) {
      auto cron = parse_cron(d->schedule.value_or(""));
      auto next = cron ? next_cron_time(*cron, t_s) : std::nullopt;
      if (!next) {
        set_status(*d, status::kError, "the schedule never fires");
        tx.commit();
        continue;
      }
      t.due_at = *next * 1000;
      key = fmt::format("cron:{}:{}", d->id, *next);
    }
    add_task(t, key);
    set_status(*d, status::kRunning, "scheduling has begun");
    tx.commit();
  }

  // Job timers, one job per transaction.
  for (const std::string& id :
       ids("SELECT id FROM jobs WHERE state = 'RUNNING' AND time_start + timeout_s <= ? ORDER BY time_start", t_s)) {
    Tx tx(db_);
    auto j = load_job(id);
    if (!j || j->state != job_state::kRunning) continue;
    end_job(*j, job_state::kCompleted, "TIMEOUT", std::nullopt, *j->time_start + j->timeout_s);
    tx.commit();
  }
  for (const std::string& id : ids(
           "SELECT j.id FROM jobs j JOIN markets m ON m.address = j.market WHERE j.state = 'QUEUED' AND "
           "j.created_at + m.job_expiration * 1000 <= ?",
           t_ms)) {
    Tx tx(db_);
    auto j = load_job(id);
    if (!j || j->state != job_state::kQueued) continue;
    end_job(*j, job_state::kStopped, "EXPIRED", std::nullopt, t_s);
    tx.commit();
  }
  for (const std::string& id : ids(
           "SELECT j.id FROM jobs j JOIN deployments d ON d.id = j.deployment WHERE j.state = 'RUNNING' AND "
           "j.ready_at IS NULL AND j.stop_requested_at IS NULL AND j.time_start + d.startup_timeout * 60 <= ?",
           t_s)) {
    Tx tx(db_);
    auto j = load_job(id);
    if (!j || j->state != job_state::kRunning || j->ready_at || j->stop_requested_at) continue;
    auto d = load_deployment(*j->deployment);
    add_event(d->id, "JOB_STARTUP_TIMEOUT",
              fmt::format("Job {} did not become ready within {} minutes; stopping it", j->id, d->startup_timeout_min));
    request_stop(*j, "STARTUP_TIMEOUT");
    tx.commit();
  }
  for (const std::string& id : ids(
           "SELECT id FROM jobs WHERE state = 'RUNNING' AND stop_requested_at IS NOT NULL AND stop_requested_at <= ?",
           t_ms - kStopConfirmGraceS * 1000)) {
    Tx tx(db_);
    auto j = load_job(id);
    if (!j || j->state != job_state::kRunning) continue;
    // The node never confirmed: billed up to the stop request.
    const std::string reason = j->stop_reason.value_or("USER_STOP");
    end_job(*j, job_state::kStopped, reason == "STARTUP_TIMEOUT" ? reason : "NODE_LOST", std::nullopt,
            *j->stop_requested_at / 1000);
    tx.commit();
  }

  // Nodes that stopped heartbeating: OFFLINE after 30 s; after 60 s more their jobs end NODE_LOST,
  // (both configurable),
  // billed up to the last heartbeat (strategies then replace them).
  for (const std::string& id : ids("SELECT id FROM nodes WHERE status != 'OFFLINE' AND last_heartbeat_at <= ?",
                                   t_ms - cfg_.node_offline_ms)) {
    Tx tx(db_);
    db_.prepare("UPDATE nodes SET status = 'OFFLINE' WHERE id = ?").bind(id).run();
    for (const std::string& jid : ids("SELECT id FROM jobs WHERE node = ? AND state = 'RUNNING'", id)) {
      auto j = load_job(jid);
      if (!j) continue;
      // The gateway stops routing to it; the node's next heartbeat reports the endpoint again.
      j->endpoint_status = "OFFLINE";
      j->updated_at = now();
      save_job(*j);
      emit_job(*j);
      if (j->deployment) {
        add_event(*j->deployment, "FRPS_TUNNEL_LOST", fmt::format("Node of job {} stopped heartbeating", jid));
        if (auto d = load_deployment(*j->deployment)) emit_deployment(*d);
      }
    }
    tx.commit();
  }
  for (const std::string& id : ids(
           "SELECT j.id FROM jobs j JOIN nodes n ON n.id = j.node WHERE j.state = 'RUNNING' AND n.last_heartbeat_at <= ?",
           t_ms - cfg_.node_offline_ms - cfg_.node_lost_grace_ms)) {
    Tx tx(db_);
    auto j = load_job(id);
    if (!j || j->state != job_state::kRunning) continue;
    Stmt hb = db_.prepare("SELECT last_heartbeat_at FROM nodes WHERE id = ?");
    hb.bind(*j->node);
    const int64_t last = hb.step() ? hb.i64(0) : t_ms;
    sys_log(id, fmt::format("The node stopped heartbeating {} s ago: job lost",
                            (cfg_.node_offline_ms + cfg_.node_lost_grace_ms) / 1000), "error");
    end_job(*j, job_state::kStopped, "NODE_LOST", std::nullopt, last / 1000);
    tx.commit();
  }

  // Due tasks, oldest first.
  Stmt due = db_.prepare(
      "SELECT id, deployment, type, job, limit_n, active_revision, due_at, status, attempts, created_at FROM tasks "
      "WHERE status = 'PENDING' AND due_at <= ?1 OR status = 'PROCESSING' AND lease_until <= ?1 ORDER BY due_at, rowid");
  due.bind(t_ms);
  std::vector<Task> tasks;
  while (due.step()) tasks.push_back(read_task(due));
  for (Task& t : tasks) {
    if (t.status == "PROCESSING") db_.prepare("UPDATE tasks SET status = 'PENDING' WHERE id = ?").bind(t.id).run();
    run_task(t);
  }

  // Convergence: STOPPING with nothing active, SIMPLE with every job ended.
  for (const std::string& id : ids("SELECT id FROM deployments WHERE status IN ('STOPPING', 'RUNNING', 'INSUFFICIENT_FUNDS')")) {
    Tx tx(db_);
    auto d = load_deployment(id);
    if (!d) continue;
    maybe_finish(*d);
    tx.commit();
  }
}

// --- raw jobs ---

Reply<json> ControlPlane::post_job(const Caller& c, const json& body) {
  if (!body.is_object()) return bad_request("body: expected a JSON object");
  if (!body.contains("market") || !body["market"].is_string()) return bad_request("market: expected string");
  if (!body.contains("timeout") || !body["timeout"].is_number_integer())
    return bad_request("timeout: expected integer (seconds)");
  const int64_t timeout_s = body["timeout"];
  auto m = load_market(body["market"]);
  if (!m) return not_found(fmt::format("Market {} not found", body["market"].get<std::string>()));
  if (timeout_s < 60 || timeout_s > static_cast<int64_t>(m->job_timeout_min) * 60)
    return bad_request(fmt::format("timeout: must be between 60 and {} seconds", m->job_timeout_min * 60));
  if (!body.contains("job_definition")) return bad_request("job_definition: required");
  auto v = validate_for_market(body["job_definition"], *m);
  if (!v) return v.error();
  Tx tx(db_);
  const Micros cost = cost_for_seconds(m->price_per_hour, timeout_s);
  auto funds = check_funds(c.account, cost);
  if (!funds) return funds.error();
  Job j;
  j.id = random_id();
  j.owner = c.account;
  j.market = m->address;
  j.timeout_s = timeout_s;
  j.price_per_hour = m->price_per_hour;
  j.tx = "api:" + j.id;
  j.job_definition = body["job_definition"].dump();
  j.created_at = j.updated_at = now();
  db_.prepare(
         "INSERT INTO jobs(id, deployment, owner, market, revision, state, phase, endpoint_status, timeout_s, "
         "price_per_hour, reserved, charged, extend_count, tx, list_key, job_definition, created_at, updated_at) "
         "VALUES(?,NULL,?,?,1,'QUEUED','QUEUED','OFFLINE',?,?,0,0,0,?,?,?,?,?)")
      .bind(j.id, j.owner, j.market, j.timeout_s, j.price_per_hour, j.tx, "raw:" + j.id, *j.job_definition,
            j.created_at, j.updated_at)
      .run();
  CHECK(reserve(j, cost, fmt::format("job:{}:debit", j.id), "job_debit", fmt::format("Reserved {} s", timeout_s)));
  save_job(j);
  tx.commit();
  return job_list_json(j, job_url(j), 0);
}

Reply<json> ControlPlane::get_job(const Caller& c, const std::string& id) {
  auto j = load_job(id);
  if (!j || (j->owner != c.account && !c.admin)) return not_found(fmt::format("Job {} not found", id));
  return job_detail_json(*j);
}

Reply<json> ControlPlane::extend_job(const Caller& c, const std::string& id, const json& body) {
  if (!body.is_object() || !body.contains("seconds") || !body["seconds"].is_number_integer())
    return bad_request("seconds: expected integer");
  const int64_t secs = body["seconds"];
  if (secs < 60 || secs > 360'000) return bad_request("seconds: must be between 60 and 360000");
  Tx tx(db_);
  auto j = load_job(id);
  if (!j || (j->owner != c.account && !c.admin)) return not_found(fmt::format("Job {} not found", id));
  if (!j->active() || j->stop_requested_at)
    return conflict(fmt::format("Job is in the incorrect state: {} (allowed: QUEUED, RUNNING)", j->state));
  const Micros cost = cost_for_seconds(j->price_per_hour, secs);
  auto funds = check_funds(j->owner, cost);
  if (!funds) return funds.error();
  const int n = j->extend_count + 1;
  CHECK(reserve(*j, cost, fmt::format("job:{}:extend:{}", j->id, n), "job_extend", fmt::format("Extended by {} s", secs)));
  j->timeout_s += secs;
  j->extend_count = n;
  j->updated_at = now();
  save_job(*j);
  if (j->deployment) add_event(*j->deployment, "JOB_EXTEND_SUCCESSFUL", fmt::format("Job {} extended by {} s", j->id, secs));
  emit_job(*j);
  tx.commit();
  return job_list_json(*j, job_url(*j), 0);
}

Reply<json> ControlPlane::stop_job(const Caller& c, const std::string& id) {
  Tx tx(db_);
  auto j = load_job(id);
  if (!j || (j->owner != c.account && !c.admin)) return not_found(fmt::format("Job {} not found", id));
  if (!j->active()) return conflict(fmt::format("Job is in the incorrect state: {} (allowed: QUEUED, RUNNING)", j->state));
  request_stop(*j, "USER_STOP");
  tx.commit();
  return job_list_json(*j, job_url(*j), j->charged);
}

json ControlPlane::stats() {
  json out{{"deployments", json::object()}, {"jobs", json::object()}};
  Stmt s = db_.prepare("SELECT status, COUNT(*) FROM deployments GROUP BY status");
  while (s.step()) out["deployments"][s.text(0)] = s.i64(1);
  Stmt j = db_.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state");
  while (j.step()) out["jobs"][j.text(0)] = j.i64(1);
  out["nodes"] = json::object();
  Stmt n = db_.prepare("SELECT status, COUNT(*) FROM nodes GROUP BY status");
  while (n.step()) out["nodes"][n.text(0)] = n.i64(1);
  return out;
}

}  // namespace infera::platform
