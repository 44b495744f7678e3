#pragma once

// Status and Result<T>: errors as values across module boundaries (docs/CONVENTIONS.md §4).
// A Status is OK or carries a code and a human-readable message that says what was wrong.
// Corruption, IOError and NotFound stay apart so callers can react to each differently.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "rill/proto/assert.h"

namespace rill {

enum class StatusCode : uint8_t {
  kOk = 0,
  kNotFound,         // the thing asked for does not exist
  kCorruption,       // bytes on disk or on the wire fail a check (CRC, length, magic)
  kInvalidArgument,  // the caller passed something malformed
  kIOError,          // the operating system refused (EIO, fsync failure, ...)
  kNoSpace,          // ENOSPC
  kOutOfRange,       // an offset or position outside what exists
  kFailed,           // a component is in a failed state and refuses further work
  kUnavailable,      // try again later (not leader, shutting down, ...)
  kAlreadyExists,
  kResourceExhausted,  // a configured bound was hit
  kTimeout,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status NoSpace(std::string m) { return {StatusCode::kNoSpace, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status Failed(std::string m) { return {StatusCode::kFailed, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status AlreadyExists(std::string m) {
    return {StatusCode::kAlreadyExists, std::move(m)};
  }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }

  // "Corruption: bad CRC in batch at position 4096" style.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T>: a T or a non-OK Status. Accessing value() of an error is a programmer error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    RILL_ASSERT(!std::get<Status>(v_).ok(), "Result constructed from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    RILL_ASSERT(ok(), "value() of an error Result: %s", status().ToString().c_str());
    return std::get<T>(v_);
  }
  const T& value() const& {
    RILL_ASSERT(ok(), "value() of an error Result: %s", status().ToString().c_str());
    return std::get<T>(v_);
  }
  T&& value() && {
    RILL_ASSERT(ok(), "value() of an error Result: %s", status().ToString().c_str());
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rill

// Returns early with the Status of `expr` when it is not OK.
#define RILL_RETURN_IF_ERROR(expr)        \
  do {                                    \
    ::rill::Status _rill_st = (expr);     \
    if (!_rill_st.ok()) return _rill_st;  \
  } while (0)

#define RILL_CONCAT_INNER(a, b) a##b
#define RILL_CONCAT(a, b) RILL_CONCAT_INNER(a, b)
// RILL_ASSIGN_OR_RETURN(auto x, Foo()); assigns the value or returns the error Status.
#define RILL_ASSIGN_OR_RETURN(lhs, expr) \
  RILL_ASSIGN_OR_RETURN_IMPL(RILL_CONCAT(_rill_res_, __LINE__), lhs, expr)
#define RILL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
