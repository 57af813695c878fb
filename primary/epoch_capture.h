// EpochCapture: everything one checkpoint carries, captured from QEMU's stream while the VM
// is stopped — only copies into memory, nothing slower, because the VM resumes only after
// the capture is complete. Encoding and shipping happen later, off the pause path.
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

namespace understudy::primary {

struct CapturedPage {
  uint32_t block = 0;
  uint64_t offset = 0;
  bool zero = false;
  uint32_t slot = 0;  // index into EpochCapture::page_bytes (4096 bytes per slot) unless zero
};

struct EpochCapture {
  uint64_t epoch = 0;  // 1 = the initial full image (precopy), then one per COLO checkpoint
  // When the VM stopped for this epoch: commit latency is measured from here to the ack.
  std::chrono::steady_clock::time_point stopped_at;
  std::vector<CapturedPage> pages;
  std::vector<std::byte> page_bytes;
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

  void AddPage(uint32_t block, uint64_t offset, std::span<const std::byte> bytes);
  void AddZeroPage(uint32_t block, uint64_t offset);
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_EPOCH_CAPTURE_H_
