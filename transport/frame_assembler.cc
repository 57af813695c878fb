#include "transport/frame_assembler.h"

#include "common/byte_order.h"

namespace understudy::transport {

std::span<std::byte> FrameAssembler::space() {
  switch (state_) {
    case State::kHeader:
      return std::span<std::byte>(header_).subspan(header_filled_);
    case State::kBody:
      return std::span<std::byte>(body_).subspan(body_filled_);
    case State::kComplete:
      break;
  }
  return {};
}

Status FrameAssembler::Filled(size_t count, const std::string& peer) {
  if (state_ == State::kBody) {
    body_filled_ += count;
    if (body_filled_ == body_.size()) state_ = State::kComplete;
    return Status::Ok();
  }
  if (state_ != State::kHeader) return Status::Internal("FrameAssembler::Filled after the frame completed");
  header_filled_ += count;
  if (header_filled_ < sizeof(header_)) return Status::Ok();
  uint32_t word = LoadLittleEndian<uint32_t>(header_);
  if (word & kFrameEndOfStream) {
    end_of_stream_ = true;
    state_ = State::kComplete;
    body_.clear();
    return Status::Ok();
  }
  uint32_t length = word & kFrameLengthMask;
  if (length > max_message_bytes_) {
    return Status::Corruption("frame from " + peer + " announces " + std::to_string(length) + " bytes, over the " +
                              std::to_string(max_message_bytes_) + "-byte limit");
  }
  body_.resize(length);
  body_filled_ = 0;
  state_ = length == 0 ? State::kComplete : State::kBody;
  return Status::Ok();
}

void FrameAssembler::TakeMessage(std::vector<std::byte>& message) {
  message.swap(body_);
  state_ = State::kHeader;
  header_filled_ = 0;
  body_filled_ = 0;
}

}  // namespace understudy::transport
