// QemuStreamReader: an incremental parser for the migration stream QEMU 7.2 writes in COLO
// mode — the initial precopy, then one checkpoint after another.
//
// Feed() takes the bytes in whatever chunks they arrive (one byte at a time works) and calls
// the visitor for every complete unit: configuration, commands, RAM block list, each page,
// device state, the VM description, COLO messages. It never blocks and holds only what an
// incomplete unit needs (at most one page record, or one device-state buffer), never the
// stream. Pages are passed as views into the reader's input: copy what you keep.
//
// What it checks (notes/qemu-colo-stream.md has the grammar):
//  * magic, version 3, section footers matching their section ids, RAM records' flags, block
//    names and bounds, the COLO message order (request, vmstate-send, live RAM, vmstate-size);
//  * the end of the initial precopy, which QEMU does not delimit: device sections carry no
//    length, so the reader finds the `00 06 <be32> {"page_size"` that opens the VM
//    description and splits the device sections two independent ways — by the sizes the VM
//    description lists and by scanning section footers — and fails if the two disagree.
// Flags and sections it does not implement (XBZRLE, compression, RDMA hooks, multifd,
// iterable sections other than "ram") are refused with an error naming them and the offset.
//
// Any error is sticky: the reader refuses further input and returns the first error again.
// Errors name the byte offset in the stream.
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_CHECKPOINT_QEMU_STREAM_READER_H_
#define UNDERSTUDY_CHECKPOINT_QEMU_STREAM_READER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/device_sections.h"
#include "checkpoint/qemu_stream_format.h"
#include "checkpoint/ram_block.h"
#include "common/status.h"

namespace understudy::checkpoint {

struct StreamConfiguration {
  std::string machine_type;                // e.g. "pc-i440fx-7.2"
  std::vector<std::string> capabilities;   // from the configuration/capabilities subsection
  bool ignore_shared() const;              // x-ignore-shared announced
};

enum class RamSectionKind { kStart, kPart, kEnd };

// Receives what the reader parses. Every callback may fail; the failure stops the reader and
// Feed returns it. Default implementations accept and ignore.
class QemuStreamVisitor {
 public:
  virtual ~QemuStreamVisitor() = default;

  virtual Status OnConfiguration(const StreamConfiguration& /*configuration*/) { return Status::Ok(); }
  // QEMU_VM_COMMAND sections (ENABLE_COLO and any other), with their payload.
  virtual Status OnCommand(uint16_t /*command*/, std::span<const std::byte> /*data*/) { return Status::Ok(); }
  // The block list from the RAM SECTION_START; block_index in page callbacks indexes it.
  virtual Status OnRamBlocks(const RamBlockList& /*blocks*/) { return Status::Ok(); }
  // `page` holds exactly 4096 bytes and is valid only during the call.
  virtual Status OnRamPage(uint32_t /*block_index*/, uint64_t /*offset*/, std::span<const std::byte> /*page*/) {
    return Status::Ok();
  }
  // A page whose every byte is `fill` (QEMU sends 0 in practice).
  virtual Status OnRamZeroPage(uint32_t /*block_index*/, uint64_t /*offset*/, uint8_t /*fill*/) { return Status::Ok(); }
  // A RAM section's records ended (EOS and a matching footer).
  virtual Status OnRamSectionEnd(RamSectionKind /*kind*/) { return Status::Ok(); }
  // Every non-iterable device's state: SECTION_FULL sections followed by the EOF byte, exactly
  // as QEMU wrote them. Once for the initial precopy, then once per checkpoint (which
  // completes that checkpoint). Valid only during the call.
  virtual Status OnDeviceState(std::span<const std::byte> /*sections_and_eof*/) { return Status::Ok(); }
  // The initial precopy's VM description, and its device sections as the two-way split found
  // them (offsets into the buffer passed to OnDeviceState just before).
  virtual Status OnVmDescription(std::string_view /*json*/, const std::vector<DeviceSectionSpan>& /*sections*/) {
    return Status::Ok();
  }
  // A COLO message from QEMU (checkpoint-request, vmstate-send, vmstate-size).
  virtual Status OnColoMessage(qemu_stream::ColoMessage /*message*/) { return Status::Ok(); }
};

struct QemuStreamReaderOptions {
  // Require the initial precopy's device sections to split identically by VM-description
  // sizes and by footers. Only streams written by QemuStreamWriter (whose VM description is
  // minimal) may turn this off; they are then split by footers alone.
  bool require_vmdesc_cross_check = true;
  // Upper bounds checked before anything is allocated.
  uint64_t max_device_state_bytes = 256ull << 20;
  uint32_t max_vmdesc_bytes = 64u << 20;
};

class QemuStreamReader {
 public:
  explicit QemuStreamReader(QemuStreamVisitor& visitor, QemuStreamReaderOptions options = {});

  // Parses as much of `bytes` as forms complete units; keeps the rest for the next call.
  Status Feed(std::span<const std::byte> bytes);

  // Where the reader stands, for the COLO peer loop and for errors.
  enum class Phase {
    kPrecopy,              // header, configuration, RAM sections, device state, VM description
    kAwaitingCheckpoint,   // precopy done (send checkpoint-ready), or between checkpoints
    kInCheckpoint,         // between checkpoint-request and the end of the device state
    kFailed,
  };
  Phase phase() const;
  bool precopy_complete() const { return precopy_complete_; }
  uint64_t checkpoints_completed() const { return checkpoints_completed_; }
  uint64_t bytes_consumed() const { return stream_offset_; }
  const RamBlockList& ram_blocks() const { return blocks_; }
  const StreamConfiguration& configuration() const { return configuration_; }
  std::optional<uint32_t> ram_section_id() const { return ram_section_id_; }
  // Each device section's id and name as the precopy introduced them.
  const std::vector<DeviceSectionSpan>& precopy_device_sections() const { return precopy_sections_; }

 private:
  enum class State {
    kFileHeader,
    kTopLevel,             // a section type byte in the precopy
    kRamRecords,           // inside a RAM section, until EOS
    kSectionFooter,        // 7e be32 sid closing the current RAM section
    kPrecopyDevices,       // device sections + EOF, scanning for the VM description
    kVmDescription,        // the VM description's JSON
    kColoMessage,          // be32 message from QEMU
    kLiveRamSection,       // inside a checkpoint: END section header or the closing EOF
    kDeviceBuffer,         // vmstate-size bytes of device state
    kFailed,
  };

  // Each Parse* consumes one whole unit from `input` (advancing it) and returns true, or
  // returns false without consuming when `input` holds only part of a unit.
  Result<bool> ParseUnit(std::span<const std::byte>& input);
  Result<bool> ParseFileHeader(std::span<const std::byte>& input);
  Result<bool> ParseTopLevel(std::span<const std::byte>& input);
  Result<bool> ParseConfiguration(std::span<const std::byte>& input);
  Result<bool> ParseRamRecord(std::span<const std::byte>& input);
  Result<bool> ParseBlockList(std::span<const std::byte>& input, uint64_t total_bytes, size_t header_bytes);
  Result<bool> ParseSectionFooter(std::span<const std::byte>& input);
  Result<bool> ParsePrecopyDevices(std::span<const std::byte>& input);
  Result<bool> ParseVmDescription(std::span<const std::byte>& input);
  Result<bool> ParseColoMessage(std::span<const std::byte>& input);
  Result<bool> ParseLiveRamSection(std::span<const std::byte>& input);
  Result<bool> ParseDeviceBuffer(std::span<const std::byte>& input);
  Status FinishPrecopy();

  // Parses units from `input` until it runs dry or a unit is incomplete; returns bytes used.
  Result<size_t> ParseAvailable(std::span<const std::byte> input);
  Status Fail(Status status);
  std::string At(uint64_t extra = 0) const;  // "at offset N"

  QemuStreamVisitor& visitor_;
  const QemuStreamReaderOptions options_;

  State state_ = State::kFileHeader;
  Status failure_;
  uint64_t stream_offset_ = 0;  // bytes consumed before the unit being parsed
  std::vector<std::byte> carry_;  // the start of a unit split across Feed calls

  StreamConfiguration configuration_;
  bool configuration_seen_ = false;
  RamBlockList blocks_;
  bool block_list_seen_ = false;
  std::optional<uint32_t> ram_section_id_;
  uint32_t current_section_id_ = 0;
  RamSectionKind current_section_kind_ = RamSectionKind::kStart;
  std::optional<uint32_t> current_block_;  // CONTINUE's "last block": persists across sections

  std::vector<std::byte> device_state_;
  size_t vmdesc_scan_from_ = 0;
  size_t device_state_end_ = 0;   // precopy: bytes of device sections + EOF
  uint32_t vmdesc_length_ = 0;
  uint64_t device_bytes_remaining_ = 0;
  std::vector<DeviceSectionSpan> precopy_sections_;
  bool precopy_complete_ = false;

  qemu_stream::ColoMessage expected_message_ = qemu_stream::ColoMessage::kCheckpointRequest;
  uint64_t checkpoints_completed_ = 0;
};

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_QEMU_STREAM_READER_H_
