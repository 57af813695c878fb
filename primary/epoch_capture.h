// EpochCapture: everything one checkpoint carries, captured from QEMU's stream while the VM
// is stopped — only views and copies into memory, nothing slower, because the VM resumes only
// after the capture is complete. Encoding and shipping happen later, off the pause path.
//
// Pages are views: each points into a chunk of the capture arena (primary/capture_arena.h)
// that `chunks` keeps alive, usually the very bytes read from QEMU's socket. Moving the
// capture keeps them valid; destroying it returns the chunks for reuse.
#ifndef UNDERSTUDY_PRIMARY_EPOCH_CAPTURE_H_
#define UNDERSTUDY_PRIMARY_EPOCH_CAPTURE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/ram_block.h"
#include "primary/chunk_pool.h"

namespace understudy::primary {

struct CapturedPage {
  uint32_t block = 0;
  uint64_t offset = 0;
  bool zero = false;
  const std::byte* bytes = nullptr;  // the page's 4096 bytes unless zero (in EpochCapture::chunks)

  std::span<const std::byte> view() const { return {bytes, 4096}; }
};

struct EpochCapture {
  uint64_t epoch = 0;  // 1 = the initial full image (precopy), then one per COLO checkpoint
  // When the VM stopped for this epoch: commit latency is measured from here to the ack.
  std::chrono::steady_clock::time_point stopped_at;
  std::vector<CapturedPage> pages;
  std::vector<CaptureChunk::Ref> chunks;  // hold every page's bytes
  std::string device_state;
  checkpoint::OutputChunk console_output;
  checkpoint::OutputChunk network_output{checkpoint::OutputStream::kNetwork, 0, {}};  // frames, length-prefixed
  // The disk writes completed in this epoch, then the part of the initial copy it carries.
  std::vector<checkpoint::DiskWrite> disk_writes;
  bool disk_flushed = false;
  bool disk_sync_incomplete = false;  // the pairing's initial disk copy continues later

  // Only in epoch 1: what the secondary needs to build its standby.
  std::optional<std::string> machine_definition_json;
  std::optional<checkpoint::RamBlockList> ram_blocks;
  std::optional<checkpoint::QemuStreamInfo> stream_info;

  // REQUIRES: `bytes` (4096 of them) stay valid while `chunks` are held.
  void AddPage(uint32_t block, uint64_t offset, const std::byte* bytes);
  void AddZeroPage(uint32_t block, uint64_t offset);
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_EPOCH_CAPTURE_H_
