#include "platform/sqlite.h"

#include <sqlite3.h>

#include <fmt/format.h>

namespace infera::platform {

namespace {
[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw SqlError(fmt::format("sqlite: {}: {}", what, db ? sqlite3_errmsg(db) : "no connection"));
}
}  // namespace

Stmt::~Stmt() {
  if (st_) sqlite3_finalize(st_);
}

void Stmt::bind_one(int i, int64_t v) {
  if (sqlite3_bind_int64(st_, i, v) != SQLITE_OK) fail(db_, "bind");
}
void Stmt::bind_one(int i, std::string_view v) {
  if (sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) fail(db_, "bind");
}
void Stmt::bind_one(int i, std::nullptr_t) {
  if (sqlite3_bind_null(st_, i) != SQLITE_OK) fail(db_, "bind");
}

void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, sqlite3_sql(st_));
}

int Stmt::run() {
  while (step()) {
  }
  return sqlite3_changes(db_);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
int64_t Stmt::i64(int col) const { return sqlite3_column_int64(st_, col); }
std::optional<int64_t> Stmt::opt_i64(int col) const {
  if (is_null(col)) return std::nullopt;
  return i64(col);
}
std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(st_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, col)));
}
std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

Result<Db> Db::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return error("cannot open database {}: {}", path, msg);
  }
  Db out(db);
  try {
    sqlite3_busy_timeout(db, 5000);
    out.exec("PRAGMA journal_mode=WAL");
    out.exec("PRAGMA synchronous=NORMAL");
    out.exec("PRAGMA foreign_keys=ON");
  } catch (const SqlError& e) {
    return error("cannot open database {}: {}", path, e.what());
  }
  return out;
}

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close(db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

Db::~Db() {
  if (db_) sqlite3_close(db_);
}

void Db::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw SqlError(fmt::format("sqlite: {}: {}", s.substr(0, 80), msg));
  }
}

Stmt Db::prepare(std::string_view sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &st, nullptr) != SQLITE_OK) fail(db_, sql);
  return Stmt(db_, st);
}

int64_t Db::scalar(std::string_view sql) {
  Stmt st = prepare(sql);
  return st.step() ? st.i64(0) : 0;
}

int64_t Db::changes() const { return sqlite3_changes(db_); }

Tx::Tx(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
Tx::~Tx() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Tx::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace infera::platform
