// Result<T>: either a T or the failed Status that explains why there is none.
//
//   Result<Config> config = LoadConfig(path);
//   if (!config.ok()) return config.status().WithContext("loading " + path);
//   Use(*config);
//
// Dereferencing a failed Result is a bug and aborts.
#ifndef UNDERSTUDY_COMMON_RESULT_H_
#define UNDERSTUDY_COMMON_RESULT_H_

#include <cstdlib>
#include <optional>
#include <utility>

#include "common/status.h"

namespace understudy {

template <typename T>
class [[nodiscard]] Result {
 public:
  // REQUIRES: !status.ok(). A failed Result built from an OK status is turned into kInternal.
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit on purpose
    if (status_.ok()) status_ = Status::Internal("Result constructed from an OK status without a value");
  }
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return Checked(); }
  const T& value() const& { return const_cast<Result*>(this)->Checked(); }
  T&& value() && { return std::move(Checked()); }

  T& operator*() & { return Checked(); }
  const T& operator*() const& { return const_cast<Result*>(this)->Checked(); }
  T&& operator*() && { return std::move(Checked()); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->Checked(); }

 private:
  T& Checked() {
    if (!value_) std::abort();
    return *value_;
  }

  Status status_;  // OK exactly when value_ holds a value
  std::optional<T> value_;
};

}  // namespace understudy

// Evaluates `expr` (a Result); on failure returns its Status, else moves the value into `lhs`.
#define UNDERSTUDY_ASSIGN_OR_RETURN(lhs, expr) \
  UNDERSTUDY_ASSIGN_OR_RETURN_IMPL(UNDERSTUDY_CONCAT(understudy_result_, __LINE__), lhs, expr)
#define UNDERSTUDY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return tmp.status();                    \
  lhs = std::move(*tmp)
#define UNDERSTUDY_CONCAT(a, b) UNDERSTUDY_CONCAT_INNER(a, b)
#define UNDERSTUDY_CONCAT_INNER(a, b) a##b

#endif  // UNDERSTUDY_COMMON_RESULT_H_
