// Checkpoint: one epoch of a protected VM, as Understudy's agents exchange it.
//
// A plain value: what changed in guest RAM during the epoch (already encoded page by page),
// QEMU's device state at the end of it, the output the guest produced in it, and — in the
// first checkpoint of a pairing — what the secondary needs to build its standby (machine
// definition, RAM blocks, QEMU stream parameters). checkpoint_codec.h turns it into bytes
// (FORMAT.md) and back.
#ifndef UNDERSTUDY_CHECKPOINT_CHECKPOINT_H_
#define UNDERSTUDY_CHECKPOINT_CHECKPOINT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_format.h"
#include "checkpoint/ram_block.h"

namespace understudy::checkpoint {

struct EncodedPage {
  uint64_t offset = 0;  // within its block, page-aligned
  format::PageEncoding encoding = format::PageEncoding::kRaw;
  std::string bytes;    // empty for kZero; 4096 for kRaw

  bool operator==(const EncodedPage&) const = default;
};

struct PageRun {
  uint32_t block_index = 0;
  std::vector<EncodedPage> pages;

  bool operator==(const PageRun&) const = default;
};

// What a promotion stream needs to look like the source QEMU's (checkpoint/qemu_stream_writer.h).
struct QemuStreamInfo {
  uint32_t ram_section_id = 0;
  std::string machine_type;
  std::vector<std::string> capabilities;

  bool operator==(const QemuStreamInfo&) const = default;
};

enum class OutputStream : uint32_t { kConsole = 0, kNetwork = 1 };

// Output the guest produced during the epoch, with its position in that output stream so a
// new owner can release exactly what the old one had not.
struct OutputChunk {
  OutputStream stream = OutputStream::kConsole;
  uint64_t stream_offset = 0;
  std::string bytes;

  bool operator==(const OutputChunk&) const = default;
};

// One write the guest's disk completed in this epoch (disk replication): `length` bytes at
// byte `offset` of the disk — `data`, or zeroes when `zero` (trim, write-zeroes).
struct DiskWrite {
  uint64_t offset = 0;
  uint32_t length = 0;
  bool zero = false;
  std::string data;  // exactly `length` bytes unless zero

  bool operator==(const DiskWrite&) const = default;
};

struct Checkpoint {
  uint64_t epoch = 0;
  uint64_t base_epoch = 0;  // what kXorLz4 pages refer to; 0 when none do
  bool full = false;        // the page runs cover every page of every block

  std::optional<std::string> machine_definition_json;
  std::optional<QemuStreamInfo> stream_info;
  std::optional<RamBlockList> ram_blocks;
  std::vector<PageRun> page_runs;
  std::optional<std::string> device_state;  // QEMU device sections + EOF, verbatim
  std::vector<OutputChunk> outputs;
  std::vector<DiskWrite> disk_writes;  // in completion order: applied in this order
  bool disk_flushed = false;           // the guest flushed its disk during the epoch
  // The pairing's initial disk copy continues in later epochs: until a checkpoint without
  // this flag commits, the receiver's copy of the disk is not consistent.
  bool disk_sync_incomplete = false;

  size_t page_count() const;
  bool operator==(const Checkpoint&) const = default;
};

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_CHECKPOINT_H_
