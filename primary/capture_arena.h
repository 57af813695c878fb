// CaptureArena: the memory one COLO stream is read into and its pages kept in, so that the
// capture inside the VM's pause keeps each page as a view into the bytes read from the socket
// instead of copying it (primary/epoch_capture.h).
//
// ColoPeer reads the stream straight into the arena's current chunk (a StreamReadBuffer),
// appending; filled bytes are never written again while anyone refers to the chunk. Keep()
// gives a page a stable address: the view itself when it lies in the chunk being read (the
// usual case), otherwise a copy into a copy chunk — pages the stream reader completed in its
// carry buffer (a record split across reads or chunks). TakeEpochChunks() hands the finished
// epoch references to every chunk its pages point into; chunks return to the ChunkPool once
// the last capture holding them is gone.
//
// Prepare() runs before the VM stops (at checkpoint-request): it maps and faults in enough
// idle chunks for a checkpoint as large as the recent ones, so reading and copying inside the
// pause never page-fault.
//
// Thread safety: not thread-safe; ColoPeer's thread only (the chunks' pool is thread-safe).
#ifndef UNDERSTUDY_PRIMARY_CAPTURE_ARENA_H_
#define UNDERSTUDY_PRIMARY_CAPTURE_ARENA_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "primary/chunk_pool.h"
#include "primary/stream_read_buffer.h"

namespace understudy::primary {

class CaptureArena : public StreamReadBuffer {
 public:
  // A read goes into the current chunk only while this much of it is free; else a new chunk.
  static constexpr size_t kMinReadBytes = 256u << 10;
  static constexpr size_t kPageBytes = 4096;

  explicit CaptureArena(std::shared_ptr<ChunkPool> pool);

  Result<std::span<std::byte>> NextReadSpace() override;
  std::span<const std::byte> Filled(size_t count) override;

  // A stable address for the 4096 bytes of `page` (valid while a reference to the chunks of
  // this epoch is held): `page` itself if it lies in bytes read into the arena, else a copy.
  // REQUIRES: page.size() == kPageBytes.
  Result<const std::byte*> Keep(std::span<const std::byte> page);

  // The chunks every page kept since the last call points into; the epoch's capture holds
  // them. The chunks still being filled stay in use by the arena (and the next epoch).
  std::vector<CaptureChunk::Ref> TakeEpochChunks();

  // Off the pause (at checkpoint-request): faults in idle chunks for a checkpoint like the
  // largest of the recent ones (the precopy does not count).
  Status Prepare();

  struct Stats {
    uint64_t pages_viewed = 0;  // kept in place
    uint64_t pages_copied = 0;  // copied (split across reads or chunks)
    uint64_t chunks_started = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  Result<CaptureChunk::Ref> StartChunk();

  std::shared_ptr<ChunkPool> pool_;
  CaptureChunk::Ref reading_;  // the chunk reads append to
  size_t read_used_ = 0;       // its bytes filled so far
  CaptureChunk::Ref copying_;  // where pages that were not read into the arena are copied
  size_t copy_used_ = 0;
  std::vector<CaptureChunk::Ref> epoch_chunks_;  // chunks of the current epoch
  size_t epoch_started_chunks_ = 0;              // chunks started during the current epoch
  bool prepared_ = false;                        // Prepare() ran for the current epoch
  std::array<size_t, 8> recent_chunks_{};        // per recent checkpoint, chunks it started
  size_t recent_next_ = 0;
  Stats stats_;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CAPTURE_ARENA_H_
