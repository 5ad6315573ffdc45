#include "platform/entities.h"

namespace infera::platform {

namespace {
json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }
json opt(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }
json opt_time(const std::optional<int64_t>& ms) { return ms ? json(iso8601_ms(*ms)) : json(nullptr); }
}  // namespace

json to_json(const Market& m, int available_nodes, int queued_jobs) {
  // The reward is derived from the user price: price / (1 + fee), rounded to 5 decimals.
  const double reward_e5 = static_cast<double>(m.price_per_hour) / 10.0 / (1.0 + m.fee_percentage / 100.0);
  return json{{"address", m.address},
              {"name", m.name},
              {"slug", m.slug},
              {"type", m.type},
              {"kind", m.kind},
              {"usd_reward_per_hour", static_cast<double>(static_cast<int64_t>(reward_e5 + 0.5)) / 100000.0},
              {"network_fee_percentage", m.fee_percentage},
              {"usd_price_per_hour", usd(m.price_per_hour)},
              {"nos_job_price_per_second", nullptr},
              {"lowest_vram", m.lowest_vram_gb},
              {"gpu_types", m.gpu_types},
              {"job_timeout", m.job_timeout_min},
              {"job_expiration", m.job_expiration_s},
              {"available_nodes", available_nodes},
              {"queued_jobs", queued_jobs},
              {"metadata", json::object()}};
}

json to_json(const Revision& r) {
  return json{{"revision", r.revision},
              {"deployment", r.deployment},
              {"ipfs_definition_hash", r.hash},
              {"job_definition", r.job_definition},
              {"created_at", iso8601_ms(r.created_at)}};
}

json to_json(const Event& e) {
  json j{{"category", e.category}, {"deploymentId", e.deployment}, {"type", e.type}, {"message", e.message}};
  if (e.tx) j["tx"] = *e.tx;
  j["created_at"] = iso8601_ms(e.created_at);
  return j;
}

json to_json(const Task& t) {
  json j{{"task", t.type}, {"deploymentId", t.deployment}, {"tx", "task:" + t.id}};
  if (t.job) j["job"] = *t.job;
  if (t.limit) j["limit"] = *t.limit;
  if (t.active_revision) j["active_revision"] = *t.active_revision;
  j["due_at"] = iso8601_ms(t.due_at);
  j["created_at"] = iso8601_ms(t.created_at);
  return j;
}

json to_json(const LedgerEntry& e) {
  json j{{"id", e.id},
         {"account", e.account},
         {"type", e.type},
         {"amount_usd", usd(e.amount)},
         {"deployment", opt(e.deployment)},
         {"job", opt(e.job)},
         {"description", e.description},
         {"idempotency_key", e.idempotency_key},
         {"created_at", iso8601_ms(e.created_at)}};
  if (e.type == "job_settlement") j["charge_usd"] = usd(e.charge);
  return j;
}

json to_json(const ApiKey& k) {
  return json{{"id", k.id},
              {"name", k.name},
              {"prefix", k.prefix},
              {"status", k.status},
              {"created_at", iso8601_ms(k.created_at)},
              {"expires_at", opt_time(k.expires_at)},
              {"last_used_at", opt_time(k.last_used_at)}};
}

json to_json(const Balance& b) {
  return json{{"assignedCredits", usd(b.assigned)},
              {"reservedCredits", usd(b.reserved)},
              {"settledCredits", usd(b.settled)},
              {"availableCredits", usd(b.available)}};
}

json job_list_json(const Job& j, const std::optional<std::string>& url, Micros cost) {
  return json{{"tx", j.tx},
              {"deployment", opt(j.deployment)},
              {"job", j.id},
              {"market", j.market},
              {"node", opt(j.node)},
              {"revision", j.revision},
              {"state", j.state},
              {"time_start", opt(j.time_start)},
              {"time_end", opt(j.time_end)},
              {"phase", j.phase},
              {"endpoint_status", j.endpoint_status},
              {"url", opt(url)},
              {"end_reason", opt(j.end_reason)},
              {"exit_code", j.exit_code ? json(*j.exit_code) : json(nullptr)},
              {"timeout", j.timeout_s},
              {"cost_usd", usd(cost)},
              {"reserved_usd", usd(j.reserved)},
              {"created_at", iso8601_ms(j.created_at)},
              {"updated_at", iso8601_ms(j.updated_at)}};
}

}  // namespace infera::platform
