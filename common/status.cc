#include "common/status.h"

#include <cstring>

namespace understudy {

Status Status::FromErrno(std::string_view what, int error_number) {
  std::string message(what);
  message += ": ";
  message += std::strerror(error_number);
  return IOError(message);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += state_->message;
  return Status(state_->code, message);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string text(CodeName(code()));
  text += ": ";
  text += message();
  return text;
}

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "Invalid argument";
    case Status::Code::kNotFound: return "Not found";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kNotSupported: return "Not supported";
    case Status::Code::kIOError: return "IO error";
    case Status::Code::kDeadlineExceeded: return "Deadline exceeded";
    case Status::Code::kPeerClosed: return "Peer closed";
    case Status::Code::kBroken: return "Broken";
    case Status::Code::kFailedPrecondition: return "Failed precondition";
    case Status::Code::kInternal: return "Internal error";
  }
  return "Unknown";
}

std::ostream& operator<<(std::ostream& out, const Status& status) { return out << status.ToString(); }

}  // namespace understudy
