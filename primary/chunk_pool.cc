#include "primary/chunk_pool.h"

#include <sys/mman.h>

#include <cerrno>

namespace understudy::primary {

Result<std::unique_ptr<CaptureChunk>> CaptureChunk::Map() {
  // MAP_POPULATE faults every page in now, in one system call, rather than one fault per
  // 4 KiB page at first touch (expensive under paravirtual KVM).
  void* memory = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (memory == MAP_FAILED) return Status::FromErrno("mapping a capture chunk", errno);
  return std::unique_ptr<CaptureChunk>(new CaptureChunk(static_cast<std::byte*>(memory)));
}

CaptureChunk::~CaptureChunk() { ::munmap(data_, kBytes); }

std::shared_ptr<ChunkPool> ChunkPool::Create(size_t retained) {
  return std::shared_ptr<ChunkPool>(new ChunkPool(retained));
}

CaptureChunk::Ref ChunkPool::Share(std::unique_ptr<CaptureChunk> chunk) {
  return CaptureChunk::Ref(chunk.release(), [pool = shared_from_this()](CaptureChunk* released) {
    pool->Return(std::unique_ptr<CaptureChunk>(released));
  });
}

Result<CaptureChunk::Ref> ChunkPool::Take() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<CaptureChunk> chunk = std::move(idle_.back());
      idle_.pop_back();
      return Share(std::move(chunk));
    }
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<CaptureChunk> mapped, CaptureChunk::Map());
  MutexLock lock(&mu_);
  ++mapped_total_;
  return Share(std::move(mapped));
}

Status ChunkPool::Prefill(size_t idle) {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (idle_.size() >= std::min(idle, retained_)) return Status::Ok();
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<CaptureChunk> mapped, CaptureChunk::Map());
    MutexLock lock(&mu_);
    ++mapped_total_;
    idle_.push_back(std::move(mapped));
  }
}

void ChunkPool::Return(std::unique_ptr<CaptureChunk> chunk) {
  MutexLock lock(&mu_);
  if (idle_.size() < retained_) idle_.push_back(std::move(chunk));
  // else: unmapped as `chunk` goes out of scope (under the lock: munmap is quick and rare)
}

void ChunkPool::SetRetained(size_t retained) {
  std::vector<std::unique_ptr<CaptureChunk>> surplus;
  MutexLock lock(&mu_);
  retained_ = retained;
  while (idle_.size() > retained_) {
    surplus.push_back(std::move(idle_.back()));
    idle_.pop_back();
  }
}

size_t ChunkPool::idle() const {
  MutexLock lock(&mu_);
  return idle_.size();
}

size_t ChunkPool::mapped_total() const {
  MutexLock lock(&mu_);
  return mapped_total_;
}

}  // namespace understudy::primary
