// ChunkPool: fixed-size blocks of memory, faulted in when made and recycled when released, so
// the capture can read QEMU's stream into memory that never page-faults inside the VM's pause.
//
// A chunk is handed out as a shared reference (CaptureChunk::Ref): the capture arena holds
// the chunk it is filling, and every EpochCapture holds the chunks its pages point into. When
// the last reference goes (the shipper destroyed the capture), the chunk returns to the pool,
// which keeps up to `retained` idle chunks (faulted in) and frees the rest.
//
// Thread safety: thread-safe. References may be dropped on any thread; the pool lives until
// the last chunk it handed out is released (the chunks refer to it).
#ifndef UNDERSTUDY_PRIMARY_CHUNK_POOL_H_
#define UNDERSTUDY_PRIMARY_CHUNK_POOL_H_

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "common/status.h"

namespace understudy::primary {

// One block of kBytes, mapped and faulted in (MAP_POPULATE) when made. Not copyable.
class CaptureChunk {
 public:
  using Ref = std::shared_ptr<CaptureChunk>;
  static constexpr size_t kBytes = 4u << 20;

  static Result<std::unique_ptr<CaptureChunk>> Map();
  ~CaptureChunk();
  CaptureChunk(const CaptureChunk&) = delete;
  CaptureChunk& operator=(const CaptureChunk&) = delete;

  std::span<std::byte> bytes() const { return {data_, kBytes}; }
  // Whether all of `view` lies inside this chunk.
  bool Holds(std::span<const std::byte> view) const {
    return view.data() >= data_ && view.data() + view.size() <= data_ + kBytes;
  }

 private:
  explicit CaptureChunk(std::byte* data) : data_(data) {}
  std::byte* const data_;
};

class ChunkPool : public std::enable_shared_from_this<ChunkPool> {
 public:
  // `retained`: idle chunks kept faulted in for reuse (SetRetained changes it).
  static std::shared_ptr<ChunkPool> Create(size_t retained = 4);

  // An idle chunk, or a newly mapped one (which costs page faults: call Prefill off the
  // pause so this does not happen inside it). Fails only when the kernel refuses memory.
  Result<CaptureChunk::Ref> Take() EXCLUDES(mu_);
  // Maps chunks until `idle` of them are idle (at most the retained count). Meant to run
  // while the VM is running.
  Status Prefill(size_t idle) EXCLUDES(mu_);
  void SetRetained(size_t retained) EXCLUDES(mu_);

  size_t idle() const EXCLUDES(mu_);
  size_t mapped_total() const EXCLUDES(mu_);  // chunks ever mapped (tests: reuse vs new)

 private:
  explicit ChunkPool(size_t retained) : retained_(retained) {}
  void Return(std::unique_ptr<CaptureChunk> chunk) EXCLUDES(mu_);
  CaptureChunk::Ref Share(std::unique_ptr<CaptureChunk> chunk);

  mutable Mutex mu_;
  size_t retained_ GUARDED_BY(mu_);
  std::vector<std::unique_ptr<CaptureChunk>> idle_ GUARDED_BY(mu_);
  size_t mapped_total_ GUARDED_BY(mu_) = 0;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CHUNK_POOL_H_
