// FrameAssembler: rebuilds the length-prefixed frames of a byte-stream transport (tcp://,
// tls://) from reads of any size, across as many Receive calls as it takes.
//
// Why it exists: agents poll Receive with short deadlines (10 ms) so they can watch their
// peer between messages. A large checkpoint takes longer than that to arrive, so a deadline
// routinely expires mid-message. Whatever was read so far must survive until the next call;
// if it were dropped, the next call would take page bytes for a frame header and the stream
// would be misaligned from then on.
//
// Wire format (shared by tcp:// and tls://): a 4-byte little-endian word, then the body. The
// word's top bit marks end-of-stream (the sender's Close); the low 31 bits are the length.
#ifndef UNDERSTUDY_TRANSPORT_FRAME_ASSEMBLER_H_
#define UNDERSTUDY_TRANSPORT_FRAME_ASSEMBLER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace understudy::transport {

inline constexpr uint32_t kFrameEndOfStream = 1u << 31;
inline constexpr uint32_t kFrameLengthMask = kFrameEndOfStream - 1;

class FrameAssembler {
 public:
  explicit FrameAssembler(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Where the next bytes read from the stream belong. Empty once a frame is complete.
  std::span<std::byte> space();

  // Records that the first `count` bytes of space() were filled. kCorruption when a header
  // announces more than the limit (nothing is allocated for it).
  Status Filled(size_t count, const std::string& peer);

  bool complete() const { return state_ == State::kComplete; }
  bool end_of_stream() const { return end_of_stream_; }
  // True when part of a frame has arrived: the stream ending now ends it mid-message.
  bool mid_frame() const { return header_filled_ > 0 && state_ != State::kComplete; }

  // Hands the completed body to `message` (swapping buffers, so capacity is reused) and
  // starts the next frame.
  void TakeMessage(std::vector<std::byte>& message);

 private:
  enum class State { kHeader, kBody, kComplete };

  size_t max_message_bytes_;
  State state_ = State::kHeader;
  std::byte header_[4] = {};
  size_t header_filled_ = 0;
  std::vector<std::byte> body_;
  size_t body_filled_ = 0;
  bool end_of_stream_ = false;
};

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_FRAME_ASSEMBLER_H_
