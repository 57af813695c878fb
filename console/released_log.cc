#include "console/released_log.h"

namespace understudy::console {

Status ReleasedLog::Append(uint64_t offset, std::string_view bytes) {
  MutexLock lock(&mutex_);
  uint64_t end = start_ + data_.size();
  if (offset > end) {
    return Status::Internal("output released at offset " + std::to_string(offset) + " but only " +
                            std::to_string(end) + " bytes came before it: " + std::to_string(offset - end) +
                            " bytes would be lost");
  }
  uint64_t known = end - offset;
  if (known >= bytes.size()) return Status::Ok();
  data_.append(bytes.substr(known));
  if (data_.size() > capacity_) {
    size_t drop = data_.size() - capacity_;
    data_.erase(0, drop);
    start_ += drop;
  }
  grew_.SignalAll();
  return Status::Ok();
}

Status ReleasedLog::CheckOffset(uint64_t offset) {
  // Far beyond any real stream, and far from wrapping start_ + data_.size().
  constexpr uint64_t kMaxOffset = uint64_t{1} << 62;
  if (offset >= kMaxOffset) {
    return Status::InvalidArgument("output offset " + std::to_string(offset) + " is beyond any stream");
  }
  return Status::Ok();
}

Status ReleasedLog::RestartAt(uint64_t offset) {
  UNDERSTUDY_RETURN_IF_ERROR(CheckOffset(offset));
  MutexLock lock(&mutex_);
  // Inside what is kept, the pairing re-sends bytes the copy has: Append drops them.
  if (offset >= start_ && offset <= start_ + data_.size()) return Status::Ok();
  data_.clear();
  start_ = offset;
  grew_.SignalAll();  // readers past the new end learn it now, not at their deadline
  return Status::Ok();
}

uint64_t ReleasedLog::end() const {
  MutexLock lock(&mutex_);
  return start_ + data_.size();
}

Result<std::string> ReleasedLog::ReadFrom(uint64_t offset, size_t max_bytes, Deadline deadline) const {
  MutexLock lock(&mutex_);
  for (;;) {
    if (offset < start_) {
      return Status::NotFound("output before offset " + std::to_string(start_) + " is no longer kept (asked for " +
                              std::to_string(offset) + ")");
    }
    uint64_t end = start_ + data_.size();
    if (offset < end) return data_.substr(offset - start_, max_bytes);
    if (closed_) return Status::PeerClosed("output log closed");
    if (!grew_.WaitUntil(&mutex_, deadline.when()) && start_ + data_.size() <= offset) {
      return Status::DeadlineExceeded("no output past offset " + std::to_string(offset));
    }
  }
}

void ReleasedLog::Close() {
  MutexLock lock(&mutex_);
  closed_ = true;
  grew_.SignalAll();
}

}  // namespace understudy::console
