// Expected-failure tier of error handling (see docs/architecture.md, "Errors").
//
//   Result<GgufFile> r = GgufFile::open(path);
//   if (!r) { fmt::print(stderr, "{}\n", r.error()); return 1; }
//   GgufFile& f = *r;
//
// A Status/Result carries one human-readable line with its context (file, key, tensor, expected vs
// actual). Bugs use CHECK (base/check.h) instead; capacity shortages are ordinary return values.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace infera {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  bool failed_ = false;
  std::string message_;
};

// Builds a failed Status from a fmt format string.
template <typename... Args>
Status error(fmt::format_string<Args...> f, Args&&... args) {
  return Status::error(fmt::format(f, std::forward<Args>(args)...));
}

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}               // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}       // NOLINT: implicit by design
  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return status_.message(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace infera

#define INFERA_CONCAT_INNER(a, b) a##b
#define INFERA_CONCAT(a, b) INFERA_CONCAT_INNER(a, b)

// Returns the failed Status of `expr` (a Status) from the enclosing function.
#define INFERA_RETURN_IF_ERROR(expr)                         \
  do {                                                       \
    ::infera::Status infera_status_ = (expr);                \
    if (!infera_status_) return infera_status_;              \
  } while (0)

// `lhs = *expr` for a Result, or returns its failed Status.
#define INFERA_ASSIGN_OR_RETURN(lhs, expr) \
  INFERA_ASSIGN_OR_RETURN_IMPL(INFERA_CONCAT(infera_result_, __LINE__), lhs, expr)
#define INFERA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp) return tmp.status();                     \
  lhs = std::move(*tmp)
