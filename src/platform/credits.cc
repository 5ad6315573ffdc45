// Credits (§14): ledger with idempotency keys, reservations, settlement, balance; accounts and
// API keys (§15).
#include <fmt/format.h>

#include "base/check.h"
#include "platform/control_plane.h"
#include "platform/listing.h"

namespace infera::platform {

namespace {
constexpr const char* kGrantTypes = "('credit_request','manual_grant','code_claim','invitation_claim','purchase','token_topup')";
constexpr int64_t kLastUsedResolutionMs = 60'000;
constexpr size_t kKeySecretChars = 40;
}  // namespace

bool ControlPlane::ledger_add(const LedgerEntry& e) {
  int n = db_.prepare(
                 "INSERT OR IGNORE INTO ledger(id, account, type, amount, charge, deployment, job, description, "
                 "idempotency_key, created_at) VALUES(?,?,?,?,?,?,?,?,?,?)")
              .bind(random_id(), e.account, e.type, e.amount, e.charge, e.deployment, e.job, e.description,
                    e.idempotency_key, now())
              .run();
  return n == 1;
}

Balance ControlPlane::account_balance(const std::string& account) {
  Balance b;
  Stmt s = db_.prepare(fmt::format(
      "SELECT COALESCE(SUM(CASE WHEN type IN {} THEN amount ELSE 0 END), 0), COALESCE(SUM(charge), 0), "
      "COALESCE(SUM(amount), 0) FROM ledger WHERE account = ?",
      kGrantTypes));
  s.bind(account);
  s.step();
  b.assigned = s.i64(0);
  b.settled = s.i64(1);
  b.available = s.i64(2);
  Stmt r = db_.prepare("SELECT COALESCE(SUM(reserved), 0) FROM jobs WHERE owner = ? AND state IN ('QUEUED','RUNNING')");
  r.bind(account);
  r.step();
  b.reserved = r.i64(0);
  return b;
}

Reply<bool> ControlPlane::check_funds(const std::string& account, Micros need) {
  Balance b = account_balance(account);
  if (b.available >= need) return true;
  return ApiError{402, fmt::format("Insufficient credits. Need {}, have {}", format_usd(need, 3),
                                   format_usd(b.available < 0 ? 0 : b.available, 2, true))};
}

bool ControlPlane::reserve(Job& j, Micros amount, const std::string& key, const char* type,
                           const std::string& description) {
  if (account_balance(j.owner).available < amount) return false;
  LedgerEntry e;
  e.account = j.owner;
  e.type = type;
  e.amount = -amount;
  e.deployment = j.deployment;
  e.job = j.id;
  e.description = description;
  e.idempotency_key = key;
  if (ledger_add(e)) j.reserved += amount;
  return true;
}

void ControlPlane::settle(Job& j) {
  // Charge per second actually run, capped at what was reserved; the rest is refunded. Runs in the
  // same transaction as the job's final state.
  int64_t ran = 0;
  if (j.time_start && j.time_end) ran = *j.time_end - *j.time_start;
  Micros charge = std::min(cost_for_seconds(j.price_per_hour, ran), j.reserved);
  LedgerEntry s;
  s.account = j.owner;
  s.type = "job_settlement";
  s.amount = 0;
  s.charge = charge;
  s.deployment = j.deployment;
  s.job = j.id;
  s.description = fmt::format("Job ran {} s at {}/h: charged {}", ran, format_usd(j.price_per_hour, 4),
                              format_usd(charge, 6));
  s.idempotency_key = fmt::format("job:{}:settle", j.id);
  if (!ledger_add(s)) return;  // already settled
  j.charged = charge;
  if (j.reserved - charge > 0) {
    LedgerEntry r = s;
    r.type = "job_refund";
    r.amount = j.reserved - charge;
    r.charge = 0;
    r.description = fmt::format("Refund of unused reservation {}", format_usd(r.amount, 6));
    r.idempotency_key = fmt::format("job:{}:refund", j.id);
    ledger_add(r);
  }
}

Reply<json> ControlPlane::balance(const Caller& c) { return to_json(account_balance(c.account)); }

Reply<json> ControlPlane::transactions(const Caller& c, const ListQuery& q) {
  Stmt s = db_.prepare(
      "SELECT id, account, type, amount, charge, deployment, job, description, idempotency_key, created_at FROM "
      "ledger WHERE account = ? ORDER BY created_at, rowid");
  s.bind(c.account);
  std::vector<json> items;
  while (s.step()) {
    LedgerEntry e;
    e.id = s.text(0);
    e.account = s.text(1);
    e.type = s.text(2);
    e.amount = s.i64(3);
    e.charge = s.i64(4);
    e.deployment = s.opt_text(5);
    e.job = s.opt_text(6);
    e.description = s.text(7);
    e.idempotency_key = s.text(8);
    e.created_at = s.i64(9);
    if (auto t = q.filters.find("type"); t != q.filters.end() && t->second != e.type) continue;
    items.push_back(to_json(e));
  }
  return paginate(std::move(items), q, "transactions");
}

Reply<json> ControlPlane::grant(const Caller& c, const json& body) {
  if (!c.admin) return ApiError{403, "Only an admin can grant credits."};
  if (!body.is_object()) return bad_request("body: expected object");
  std::string account = c.account;
  if (body.contains("account")) {
    if (!body["account"].is_string()) return bad_request("account: expected string");
    account = body["account"];
  }
  if (!body.contains("amount") || !body["amount"].is_number()) return bad_request("amount: expected number (USD)");
  double amount = body["amount"];
  // At least one micro-dollar (the ledger's unit): a smaller amount would book $0.
  if (!(amount >= 0.5 / kMicrosPerDollar) || amount > 1e6) return bad_request("amount: must be >= 0.000001 and <= 1000000");
  Tx tx(db_);
  if (db_.prepare("SELECT 1 FROM accounts WHERE id = ?").bind(account).step() == false)
    return not_found(fmt::format("Account {} not found", account));
  LedgerEntry e;
  e.account = account;
  e.type = "manual_grant";
  e.amount = static_cast<Micros>(amount * kMicrosPerDollar + 0.5);
  e.description = body.value("note", std::string("Manual grant"));
  e.idempotency_key = "grant:" + random_id();
  ledger_add(e);
  tx.commit();
  return to_json(account_balance(account));
}

Reply<json> ControlPlane::create_claim_code(const Caller& c, const json& body) {
  if (!c.admin) return ApiError{403, "Only an admin can create claim codes."};
  if (!body.is_object() || !body.contains("amount") || !body["amount"].is_number())
    return bad_request("amount: expected number (USD)");
  double amount = body["amount"];
  // At least one micro-dollar (the ledger's unit): a smaller amount would book $0.
  if (!(amount >= 0.5 / kMicrosPerDollar) || amount > 1e6) return bad_request("amount: must be >= 0.000001 and <= 1000000");
  std::string code = random_base62(16);
  db_.prepare("INSERT INTO claim_codes(code, amount, created_by, created_at) VALUES(?,?,?,?)")
      .bind(code, static_cast<Micros>(amount * kMicrosPerDollar + 0.5), c.account, now())
      .run();
  return json{{"code", code}, {"amount_usd", amount}};
}

Reply<json> ControlPlane::claim(const Caller& c, const json& body) {
  if (!body.is_object() || !body.contains("code") || !body["code"].is_string())
    return bad_request("code: expected string");
  std::string code = body["code"];
  Tx tx(db_);
  Stmt s = db_.prepare("SELECT amount, claimed_by FROM claim_codes WHERE code = ?");
  s.bind(code);
  if (!s.step()) return not_found("Unknown claim code.");
  if (!s.is_null(1)) return conflict("This code has already been claimed.");
  Micros amount = s.i64(0);
  db_.prepare("UPDATE claim_codes SET claimed_by = ?, claimed_at = ? WHERE code = ?").bind(c.account, now(), code).run();
  LedgerEntry e;
  e.account = c.account;
  e.type = "code_claim";
  e.amount = amount;
  e.description = "Claimed code " + code.substr(0, 4) + "…";
  e.idempotency_key = "claim:" + code;
  ledger_add(e);
  tx.commit();
  return to_json(account_balance(c.account));
}

// --- accounts and API keys ---

std::string ControlPlane::ensure_admin() {
  Tx tx(db_);
  Stmt s = db_.prepare("SELECT id FROM accounts WHERE admin = 1 ORDER BY created_at LIMIT 1");
  std::string id;
  bool fresh = false;
  if (s.step()) {
    id = s.text(0);
  } else {
    id = random_id();
    fresh = true;
    db_.prepare("INSERT INTO accounts(id, email, name, admin, created_at) VALUES(?, 'admin@localhost', 'admin', 1, ?)")
        .bind(id, now())
        .run();
    LedgerEntry e;
    e.account = id;
    e.type = "credit_request";
    e.amount = cfg_.signup_grant;
    e.description = "Free credits";
    e.idempotency_key = fmt::format("account:{}:signup", id);
    ledger_add(e);
  }
  if (cfg_.admin_key) {
    Stmt k = db_.prepare("SELECT 1 FROM api_keys WHERE hash = ?");
    k.bind(sha256_hex(*cfg_.admin_key));
    if (!k.step()) create_key_row(id, "admin (INFERA_ADMIN_KEY)", std::nullopt, cfg_.admin_key);
  } else if (fresh) {
    new_admin_key_ = create_key_row(id, "admin", std::nullopt, std::nullopt);
  }
  tx.commit();
  return id;
}

std::string ControlPlane::create_key_row(const std::string& account, const std::string& name,
                                         std::optional<int64_t> expires_at,
                                         const std::optional<std::string>& fixed_secret) {
  std::string secret = fixed_secret ? *fixed_secret : "inf_" + random_base62(kKeySecretChars);
  std::string id = random_id();
  db_.prepare(
         "INSERT INTO api_keys(id, account, name, prefix, hash, status, created_at, expires_at) "
         "VALUES(?,?,?,?,?,'active',?,?)")
      .bind(id, account, name, secret.substr(0, 12), sha256_hex(secret), now(), expires_at)
      .run();
  return secret;
}

Reply<Caller> ControlPlane::authenticate(std::string_view header) {
  const ApiError unauthorized{401, "Unauthorized"};
  constexpr std::string_view kBearer = "Bearer ";
  // The scheme is case-insensitive (RFC 9110); the secret is not.
  if (header.size() <= kBearer.size()) return unauthorized;
  for (size_t i = 0; i < kBearer.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != std::tolower(static_cast<unsigned char>(kBearer[i])))
      return unauthorized;
  std::string_view secret = header.substr(kBearer.size());
  while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
  if (secret.size() < 8 || secret.size() > 256) return unauthorized;
  const std::string hash = sha256_hex(secret);
  Stmt s = db_.prepare(
      "SELECT k.id, k.account, k.status, k.expires_at, k.last_used_at, k.hash, a.admin, a.banned FROM api_keys k "
      "JOIN accounts a ON a.id = k.account WHERE k.hash = ?");
  s.bind(hash);
  if (!s.step()) return unauthorized;
  if (!constant_time_equal(s.text(5), hash) || s.text(2) != "active" || s.i64(7) != 0) return unauthorized;
  auto expires = s.opt_i64(3);
  if (expires && *expires <= now()) return ApiError{401, "API key expired"};
  auto last = s.opt_i64(4);
  Caller c{s.text(1), s.i64(6) != 0};
  if (!last || now() - *last >= kLastUsedResolutionMs)
    db_.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(now(), s.text(0)).run();
  return c;
}

namespace {
ApiKey read_key(Stmt& s) {
  ApiKey k;
  k.id = s.text(0);
  k.account = s.text(1);
  k.name = s.text(2);
  k.prefix = s.text(3);
  k.status = s.text(4);
  k.created_at = s.i64(5);
  k.expires_at = s.opt_i64(6);
  k.last_used_at = s.opt_i64(7);
  return k;
}
constexpr const char* kKeyCols = "id, account, name, prefix, status, created_at, expires_at, last_used_at";
}  // namespace

Reply<json> ControlPlane::list_api_keys(const Caller& c, const ListQuery& q) {
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM api_keys WHERE account = ? ORDER BY created_at, rowid", kKeyCols));
  s.bind(c.account);
  std::vector<json> items;
  while (s.step()) items.push_back(to_json(read_key(s)));
  return paginate(std::move(items), q, "api_keys");
}

Reply<json> ControlPlane::create_api_key(const Caller& c, const json& body) {
  if (!body.is_object()) return bad_request("body: expected object");
  std::string name = "key";
  if (body.contains("name")) {
    if (!body["name"].is_string()) return bad_request("name: expected string");
    name = body["name"];
    if (name.empty() || name.size() > 100) return bad_request("name: must be 1 to 100 characters");
  }
  std::optional<int64_t> expires_at;
  if (body.contains("expires_in_days") && !body["expires_in_days"].is_null()) {
    const json& d = body["expires_in_days"];
    if (!d.is_number_integer()) return bad_request("expires_in_days: expected one of 30, 60, 90, 365 or null");
    int days = d;
    if (days != 30 && days != 60 && days != 90 && days != 365)
      return bad_request("expires_in_days: expected one of 30, 60, 90, 365 or null");
    expires_at = now() + static_cast<int64_t>(days) * 86'400'000;
  }
  Tx tx(db_);
  std::string secret = create_key_row(c.account, name, expires_at, std::nullopt);
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM api_keys WHERE hash = ?", kKeyCols));
  s.bind(sha256_hex(secret));
  CHECK(s.step());
  json out = to_json(read_key(s));
  tx.commit();
  out["key"] = secret;
  return out;
}

Reply<json> ControlPlane::update_api_key(const Caller& c, const std::string& id, const json& body) {
  if (!body.is_object()) return bad_request("body: expected object");
  Tx tx(db_);
  Stmt s = db_.prepare(fmt::format("SELECT {} FROM api_keys WHERE id = ? AND account = ?", kKeyCols));
  s.bind(id, c.account);
  if (!s.step()) return not_found(fmt::format("API key {} not found", id));
  ApiKey k = read_key(s);
  if (body.contains("name")) {
    if (!body["name"].is_string()) return bad_request("name: expected string");
    k.name = body["name"];
    if (k.name.empty() || k.name.size() > 100) return bad_request("name: must be 1 to 100 characters");
  }
  if (body.contains("status")) {
    if (!body["status"].is_string() || (body["status"] != "active" && body["status"] != "inactive"))
      return bad_request("status: expected \"active\" or \"inactive\"");
    k.status = body["status"];
  }
  db_.prepare("UPDATE api_keys SET name = ?, status = ? WHERE id = ?").bind(k.name, k.status, id).run();
  tx.commit();
  return to_json(k);
}

Reply<json> ControlPlane::delete_api_key(const Caller& c, const std::string& id) {
  int n = db_.prepare("DELETE FROM api_keys WHERE id = ? AND account = ?").bind(id, c.account).run();
  if (n == 0) return not_found(fmt::format("API key {} not found", id));
  return json{{"id", id}, {"deleted", true}};
}

}  // namespace infera::platform
