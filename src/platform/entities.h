// Plain records of the control plane (spec platform.md §3) and their JSON forms. Times are Unix
// milliseconds unless a field says seconds; money is integer micro-dollars.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "platform/util.h"

namespace infera::platform {

using json = nlohmann::json;

namespace status {  // deployment status (§4)
inline constexpr const char* kDraft = "DRAFT";
inline constexpr const char* kStarting = "STARTING";
inline constexpr const char* kRunning = "RUNNING";
inline constexpr const char* kStopping = "STOPPING";
inline constexpr const char* kStopped = "STOPPED";
inline constexpr const char* kInsufficientFunds = "INSUFFICIENT_FUNDS";
inline constexpr const char* kError = "ERROR";
inline constexpr const char* kArchived = "ARCHIVED";
}  // namespace status

namespace strategy {
inline constexpr const char* kSimple = "SIMPLE";
inline constexpr const char* kSimpleExtend = "SIMPLE-EXTEND";
inline constexpr const char* kScheduled = "SCHEDULED";
inline constexpr const char* kInfinite = "INFINITE";
}  // namespace strategy

namespace job_state {
inline constexpr const char* kQueued = "QUEUED";
inline constexpr const char* kRunning = "RUNNING";
inline constexpr const char* kCompleted = "COMPLETED";
inline constexpr const char* kStopped = "STOPPED";
}  // namespace job_state

struct Market {
  std::string address, slug, name, type, kind;  // type PREMIUM|COMMUNITY|OTHER, kind GPU|CPU
  Micros price_per_hour = 0;                     // what the user pays, fee included
  int fee_percentage = 10;
  int lowest_vram_gb = 0;
  std::vector<std::string> gpu_types;
  int job_timeout_min = 6000;
  int job_expiration_s = 86400;
};

struct Deployment {
  std::string id, name, owner, market, status, strategy;
  int replicas = 1;
  int timeout_min = 60;
  std::optional<std::string> schedule;
  std::optional<int> rotation_time_min;
  bool confidential = false;
  bool endpoint_auth = false;
  int active_revision = 1;
  int startup_timeout_min = 30;
  std::optional<int64_t> next_retry_at;
  int rapid_streak = 0;
  std::optional<std::string> template_id;
  int64_t created_at = 0, updated_at = 0;
};

struct Job {
  std::string id;
  std::optional<std::string> deployment;  // null for raw jobs (POST /jobs/list)
  std::string owner, market;
  std::optional<std::string> node;
  int revision = 1;
  std::string state = job_state::kQueued;
  std::string phase = "QUEUED";
  std::string endpoint_status = "OFFLINE";
  int64_t timeout_s = 0;                  // paid lifetime, grows with extends
  std::optional<int64_t> time_start, time_end;  // Unix seconds
  std::optional<std::string> end_reason;
  std::optional<int> exit_code;
  Micros price_per_hour = 0;              // market price when listed
  Micros reserved = 0;                    // debit + extends
  Micros charged = 0;                     // settled charge (final states only)
  int extend_count = 0;
  std::optional<int64_t> stop_requested_at;
  std::optional<std::string> stop_reason;
  std::optional<int64_t> ready_at;
  std::string tx;                         // "task:<id>" that listed it
  std::optional<std::string> job_definition;  // raw jobs only (deployment jobs use their revision)
  int64_t created_at = 0, updated_at = 0;
  bool active() const { return state == job_state::kQueued || state == job_state::kRunning; }
};

struct Revision {
  std::string deployment;
  int revision = 1;
  std::string hash;
  json job_definition;
  int64_t created_at = 0;
};

struct Event {
  int64_t id = 0;
  std::string deployment, category, type, message;
  std::optional<std::string> tx;
  int64_t created_at = 0;
};

struct Task {
  std::string id, deployment, type;  // LIST | EXTEND | STOP
  std::optional<std::string> job;
  std::optional<int> limit;
  std::optional<int> active_revision;
  int64_t due_at = 0;
  std::string status = "PENDING";
  int attempts = 0;
  int64_t created_at = 0;
};

struct LedgerEntry {
  std::string id, account, type;
  Micros amount = 0;   // effect on available
  Micros charge = 0;   // job_settlement only: what was charged
  std::optional<std::string> deployment, job;
  std::string description, idempotency_key;
  int64_t created_at = 0;
};

struct Balance {
  Micros assigned = 0, reserved = 0, settled = 0, available = 0;
};

struct ApiKey {
  std::string id, account, name, prefix, status;
  int64_t created_at = 0;
  std::optional<int64_t> expires_at, last_used_at;
};

struct Account {
  std::string id, email, name;
  bool admin = false, banned = false;
  int64_t created_at = 0;
};

json to_json(const Market& m, int available_nodes, int queued_jobs);
json to_json(const Revision& r);
json to_json(const Event& e);
json to_json(const Task& t);
json to_json(const LedgerEntry& e);
json to_json(const ApiKey& k);
json to_json(const Balance& b);
// List form of a job (§3.3); `url` is the per-job URL or null; `cost` spent so far.
json job_list_json(const Job& j, const std::optional<std::string>& url, Micros cost);

}  // namespace infera::platform
