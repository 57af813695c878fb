// Status: the outcome of an operation that can fail, as a value.
//
// Every fallible call in Understudy returns a Status (or a Result<T>, see result.h). A failed
// Status carries a Code a caller can branch on and a message a human can act on; subsystems
// add context as a failure travels up (WithContext), so the final message reads like
// "checkpoint 41: section 'ram': checksum mismatch at offset 8192".
//
// Thread safety: a Status is an immutable value; copies may be used from any thread.
#ifndef UNDERSTUDY_COMMON_STATUS_H_
#define UNDERSTUDY_COMMON_STATUS_H_

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace understudy {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,     // the caller passed something unusable
    kNotFound,            // a named file, binary, block or key does not exist
    kCorruption,          // input bytes violate their format (bad checksum, bad length, ...)
    kNotSupported,        // well-formed input that uses a feature we do not implement
    kIOError,             // the operating system refused a read, write, open, ...
    kDeadlineExceeded,    // a blocking operation ran out of time
    kPeerClosed,          // the other side closed the connection cleanly
    kBroken,              // the connection or process died mid-operation
    kFailedPrecondition,  // the object is in a state that forbids the request
    kInternal,            // a bug in Understudy
  };

  // Success. Cheap: no allocation.
  Status() = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view message) { return {Code::kInvalidArgument, message}; }
  static Status NotFound(std::string_view message) { return {Code::kNotFound, message}; }
  static Status Corruption(std::string_view message) { return {Code::kCorruption, message}; }
  static Status NotSupported(std::string_view message) { return {Code::kNotSupported, message}; }
  static Status IOError(std::string_view message) { return {Code::kIOError, message}; }
  static Status DeadlineExceeded(std::string_view message) { return {Code::kDeadlineExceeded, message}; }
  static Status PeerClosed(std::string_view message) { return {Code::kPeerClosed, message}; }
  static Status Broken(std::string_view message) { return {Code::kBroken, message}; }
  static Status FailedPrecondition(std::string_view message) { return {Code::kFailedPrecondition, message}; }
  static Status Internal(std::string_view message) { return {Code::kInternal, message}; }

  // An IOError whose message ends with strerror(error_number).
  static Status FromErrno(std::string_view what, int error_number);

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  // Empty for success.
  const std::string& message() const;

  // The same failure with "context: " in front of its message; success stays success.
  Status WithContext(std::string_view context) const;

  // "OK", or "<code name>: <message>".
  std::string ToString() const;

 private:
  struct State {
    Code code;
    std::string message;
  };

  Status(Code code, std::string_view message)
      : state_(std::make_shared<const State>(State{code, std::string(message)})) {}

  // Null means OK. Shared because a Status is immutable and copied often on error paths.
  std::shared_ptr<const State> state_;
};

std::string_view CodeName(Status::Code code);
std::ostream& operator<<(std::ostream& out, const Status& status);

}  // namespace understudy

// Returns from the enclosing function if `expr` yields a failed Status.
#define UNDERSTUDY_RETURN_IF_ERROR(expr)                          \
  do {                                                            \
    ::understudy::Status understudy_status_ = (expr);             \
    if (!understudy_status_.ok()) return understudy_status_;      \
  } while (0)

#endif  // UNDERSTUDY_COMMON_STATUS_H_
