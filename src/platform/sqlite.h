// Thin RAII layer over SQLite: a connection (WAL, foreign keys, busy timeout), prepared statements
// with typed binds, and transactions that roll back unless committed.
//
//   Stmt st = db.prepare("SELECT name FROM deployments WHERE id = ?");
//   st.bind(id);
//   while (st.step()) use(st.text(0));
//
// SQL errors are bugs or a broken disk: they throw SqlError, which the HTTP layer turns into a 500
// and the transaction guard into a rollback. Nothing half-written survives.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace infera::platform {

class SqlError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* st) : db_(db), st_(st) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), st_(o.st_) { o.st_ = nullptr; }
  Stmt(const Stmt&) = delete;
  ~Stmt();

  // Binds the arguments to ?1, ?2, ... in order. std::nullopt / nullptr bind NULL.
  template <typename... Args>
  Stmt& bind(const Args&... args) {
    int i = 1;
    (bind_one(i++, args), ...);
    return *this;
  }
  // Ready to run again with new bindings.
  void reset();
  // Runs one step: true while a row is available.
  bool step();
  // Runs to completion (INSERT/UPDATE/DELETE); returns the number of changed rows.
  int run();

  bool is_null(int col) const;
  int64_t i64(int col) const;
  std::optional<int64_t> opt_i64(int col) const;
  std::string text(int col) const;
  std::optional<std::string> opt_text(int col) const;

 private:
  void bind_one(int i, int64_t v);
  void bind_one(int i, int v) { bind_one(i, static_cast<int64_t>(v)); }
  void bind_one(int i, bool v) { bind_one(i, static_cast<int64_t>(v ? 1 : 0)); }
  void bind_one(int i, std::string_view v);
  void bind_one(int i, const std::string& v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, const char* v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, std::nullptr_t);
  void bind_one(int i, std::nullopt_t) { bind_one(i, nullptr); }
  template <typename T>
  void bind_one(int i, const std::optional<T>& v) {
    if (v) bind_one(i, *v);
    else bind_one(i, nullptr);
  }

  sqlite3* db_;
  sqlite3_stmt* st_;
};

class Db {
 public:
  // Opens (creating) the database file; ":memory:" for tests.
  static Result<Db> open(const std::string& path);
  Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  ~Db();

  void exec(std::string_view sql);
  Stmt prepare(std::string_view sql);
  // First column of the first row as an integer (0 when no row).
  int64_t scalar(std::string_view sql);
  int64_t changes() const;

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() ran. Nesting is not
// supported (one writer connection, one transaction at a time).
class Tx {
 public:
  explicit Tx(Db& db);
  ~Tx();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace infera::platform
