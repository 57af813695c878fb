// StreamReadBuffer: where ColoPeer reads QEMU's migration stream into. The default is one
// scratch buffer reused for every read; the capture arena (primary/capture_arena.h) instead
// hands out memory that outlives the read, so pages can be kept as views into it, not copied.
//
// Thread safety: ColoPeer's thread only.
#ifndef UNDERSTUDY_PRIMARY_STREAM_READ_BUFFER_H_
#define UNDERSTUDY_PRIMARY_STREAM_READ_BUFFER_H_

#include <cstddef>
#include <span>

#include "common/result.h"
#include "common/status.h"

namespace understudy::primary {

class StreamReadBuffer {
 public:
  virtual ~StreamReadBuffer() = default;
  // Writable memory for the next read (never empty on success); valid until Filled().
  virtual Result<std::span<std::byte>> NextReadSpace() = 0;
  // The first `count` bytes of the last NextReadSpace() now hold stream bytes; returns them.
  // They stay valid (and are parsed) until the next NextReadSpace().
  virtual std::span<const std::byte> Filled(size_t count) = 0;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_STREAM_READ_BUFFER_H_
