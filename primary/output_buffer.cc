#include "primary/output_buffer.h"

namespace understudy::primary {

void OutputBuffer::Append(std::string_view bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  open_.append(bytes);
}

void OutputBuffer::StartAt(uint64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  open_offset_ = offset;
}

checkpoint::OutputChunk OutputBuffer::Seal(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mutex_);
  checkpoint::OutputChunk chunk{stream_, open_offset_, open_};
  sealed_.push_back({epoch, open_offset_, std::move(open_)});
  open_offset_ += chunk.bytes.size();
  open_.clear();
  return chunk;
}

Status OutputBuffer::Release(uint64_t epoch, console::ReleasedLog& log) {
  std::lock_guard<std::mutex> lock(mutex_);
  while (!sealed_.empty() && sealed_.front().epoch <= epoch) {
    UNDERSTUDY_RETURN_IF_ERROR(log.Append(sealed_.front().offset, sealed_.front().bytes));
    sealed_.pop_front();
  }
  return Status::Ok();
}

uint64_t OutputBuffer::held_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t held = open_.size();
  for (const SealedEpoch& sealed : sealed_) held += sealed.bytes.size();
  return held;
}

uint64_t OutputBuffer::produced_offset() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_offset_ + open_.size();
}

}  // namespace understudy::primary
