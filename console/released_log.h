// ReleasedLog: the part of a guest's output stream that has been released to the world.
//
// Output is a byte stream whose every byte has a fixed offset since the guest booted (for
// the console: the k-th byte COM1 ever printed). An agent appends bytes once they may be seen
// (their checkpoint is committed on the secondary); readers — console clients — read from
// any offset they still lack and wait for more. Because offsets never change, a reader that
// switches agents after a failover asks the new owner for exactly what it lacks, and sees
// every byte once.
//
// Keeps the most recent `capacity` bytes. Thread-safe.
#ifndef UNDERSTUDY_CONSOLE_RELEASED_LOG_H_
#define UNDERSTUDY_CONSOLE_RELEASED_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/result.h"

namespace understudy::console {

class ReleasedLog {
 public:
  explicit ReleasedLog(size_t capacity = 16u << 20) : capacity_(capacity) {}

  // Appends `bytes`, which start at stream offset `offset`. Bytes the log already has are
  // ignored (a new owner may re-release what the old one had released). kInternal for a gap:
  // offset beyond end() would lose output.
  Status Append(uint64_t offset, std::string_view bytes);

  // kInvalidArgument for an offset no stream reaches (>= 2^62).
  static Status CheckOffset(uint64_t offset);
  // A standby's copy of the stream, at the start of a new pairing whose output starts at
  // `offset`. Within the bytes kept, nothing changes (Append drops what is re-sent); beyond
  // end() (what came between was released by the owner alone) or before the bytes kept (an
  // earlier pairing placed the copy wrongly) the copy starts afresh there, and readers asking
  // for what it lacks get kNotFound. Errors as CheckOffset.
  Status RestartAt(uint64_t offset);

  // Offset one past the last released byte.
  uint64_t end() const;

  // Up to `max_bytes` from `offset`, waiting until at least one byte is there, the log is
  // closed (kPeerClosed) or the deadline passes (kDeadlineExceeded). kNotFound when `offset`
  // is older than the bytes kept.
  Result<std::string> ReadFrom(uint64_t offset, size_t max_bytes, Deadline deadline) const;

  // Wakes every reader; later reads return kPeerClosed once they have read everything.
  void Close();

 private:
  const size_t capacity_;
  mutable Mutex mutex_;
  mutable CondVar grew_;
  uint64_t start_ GUARDED_BY(mutex_) = 0;  // stream offset of data_[0]
  std::string data_ GUARDED_BY(mutex_);
  bool closed_ GUARDED_BY(mutex_) = false;
};

}  // namespace understudy::console

#endif  // UNDERSTUDY_CONSOLE_RELEASED_LOG_H_
