// OutputBuffer: output the guest produced but the world may not see yet (Remus-style output
// commit).
//
// Bytes arrive into the open epoch. When a checkpoint stops the VM, the epoch is sealed with
// that checkpoint's number and its bytes travel inside the checkpoint (so a new owner can
// release them after a failover). When the secondary acks epoch N, every sealed epoch ≤ N is
// released into the ReleasedLog that console readers see. Delaying is always safe; releasing
// before the ack never is, and this class never does.
//
// Network frames use the same mechanism: a frame is appended as one length-prefixed unit.
//
// Thread-safe.
#ifndef UNDERSTUDY_PRIMARY_OUTPUT_BUFFER_H_
#define UNDERSTUDY_PRIMARY_OUTPUT_BUFFER_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include "checkpoint/checkpoint.h"
#include "console/released_log.h"

namespace understudy::primary {

class OutputBuffer {
 public:
  explicit OutputBuffer(checkpoint::OutputStream stream) : stream_(stream) {}

  // Makes the stream start at `offset` (output adopted mid-stream, after a promotion).
  // REQUIRES: nothing appended or sealed yet.
  void StartAt(uint64_t offset);

  // Bytes produced in the open epoch.
  void Append(std::string_view bytes);

  // Closes the open epoch as `epoch` and returns its output (possibly empty) with its stream
  // offset. REQUIRES: epochs sealed in increasing order.
  checkpoint::OutputChunk Seal(uint64_t epoch);

  // Moves every sealed epoch ≤ `epoch` into `log`.
  Status Release(uint64_t epoch, console::ReleasedLog& log);

  // Bytes produced but not yet released (sealed or open).
  uint64_t held_bytes() const;
  // Offset one past the last byte produced.
  uint64_t produced_offset() const;

 private:
  struct SealedEpoch {
    uint64_t epoch;
    uint64_t offset;
    std::string bytes;
  };

  const checkpoint::OutputStream stream_;
  mutable std::mutex mutex_;
  // Protected by mutex_:
  std::deque<SealedEpoch> sealed_;
  uint64_t open_offset_ = 0;  // stream offset of open_[0]
  std::string open_;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_OUTPUT_BUFFER_H_
