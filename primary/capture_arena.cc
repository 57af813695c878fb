#include "primary/capture_arena.h"

#include <algorithm>
#include <cstring>

namespace understudy::primary {

CaptureArena::CaptureArena(std::shared_ptr<ChunkPool> pool) : pool_(std::move(pool)) {}

Result<CaptureChunk::Ref> CaptureArena::StartChunk() {
  UNDERSTUDY_ASSIGN_OR_RETURN(CaptureChunk::Ref chunk, pool_->Take());
  epoch_chunks_.push_back(chunk);
  ++epoch_started_chunks_;
  ++stats_.chunks_started;
  return chunk;
}

Result<std::span<std::byte>> CaptureArena::NextReadSpace() {
  if (!reading_ || CaptureChunk::kBytes - read_used_ < kMinReadBytes) {
    UNDERSTUDY_ASSIGN_OR_RETURN(reading_, StartChunk());
    read_used_ = 0;
  }
  return reading_->bytes().subspan(read_used_);
}

std::span<const std::byte> CaptureArena::Filled(size_t count) {
  std::span<const std::byte> filled = reading_->bytes().subspan(read_used_, count);
  read_used_ += count;
  return filled;
}

Result<const std::byte*> CaptureArena::Keep(std::span<const std::byte> page) {
  // Bytes read into the current chunk are never written again: the view is stable.
  if (reading_ && reading_->Holds(page)) {
    ++stats_.pages_viewed;
    return page.data();
  }
  if (!copying_ || copy_used_ + kPageBytes > CaptureChunk::kBytes) {
    UNDERSTUDY_ASSIGN_OR_RETURN(copying_, StartChunk());
    copy_used_ = 0;
  }
  std::byte* copy = copying_->bytes().data() + copy_used_;
  std::memcpy(copy, page.data(), kPageBytes);
  copy_used_ += kPageBytes;
  ++stats_.pages_copied;
  return copy;
}

std::vector<CaptureChunk::Ref> CaptureArena::TakeEpochChunks() {
  std::vector<CaptureChunk::Ref> taken = std::move(epoch_chunks_);
  epoch_chunks_.clear();
  // The chunks being filled carry on into the next epoch; it refers to them too.
  if (reading_) epoch_chunks_.push_back(reading_);
  if (copying_) epoch_chunks_.push_back(copying_);
  // Only checkpoints (prepared at their checkpoint-request) predict the next one; the
  // precopy carries the whole image.
  if (prepared_) recent_chunks_[recent_next_++ % recent_chunks_.size()] = epoch_started_chunks_;
  prepared_ = false;
  epoch_started_chunks_ = 0;
  return taken;
}

Status CaptureArena::Prepare() {
  prepared_ = true;
  size_t expected = *std::max_element(recent_chunks_.begin(), recent_chunks_.end());
  // Idle chunks kept: the next checkpoint's and as many again while captures are shipped.
  pool_->SetRetained(2 * expected + 2);
  return pool_->Prefill(expected + 1);
}

}  // namespace understudy::primary
