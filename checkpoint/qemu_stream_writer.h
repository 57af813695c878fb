// QemuStreamWriter: writes a migration stream that a standby QEMU started with
// `-incoming defer` loads — the promotion stream of notes/qemu-colo-stream.md:
//
//   header, configuration [+ capabilities subsection when x-ignore-shared],
//   RAM SECTION_START with the block list [+ guest addresses], pages, EOS, footer,
//   [RAM SECTION_PART with pages, EOS, footer]   one per forwarded checkpoint,
//   device state verbatim (FULL sections + EOF), a minimal VM description.
//
// Output goes to a ByteSink in chunks of up to `buffer_bytes`; Flush() pushes the rest.
// The writer enforces the grammar's order and refuses to misuse it (kFailedPrecondition).
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_CHECKPOINT_QEMU_STREAM_WRITER_H_
#define UNDERSTUDY_CHECKPOINT_QEMU_STREAM_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "checkpoint/qemu_stream_reader.h"
#include "checkpoint/ram_block.h"
#include "common/status.h"

namespace understudy::checkpoint {

using ByteSink = std::function<Status(std::span<const std::byte>)>;

class QemuStreamWriter {
 public:
  explicit QemuStreamWriter(ByteSink sink, size_t buffer_bytes = 256 << 10);

  // Magic, version and the configuration section. With x-ignore-shared in `configuration`,
  // the block list carries guest addresses.
  Status WriteHeader(const StreamConfiguration& configuration);

  // SECTION_START for RAM with the block list, under `section_id` (reuse the id the source
  // QEMU used, so it cannot collide with the device sections' ids). Pages may follow.
  Status BeginRamStart(uint32_t section_id, const RamBlockList& blocks);
  // SECTION_PART for RAM: one per forwarded checkpoint.
  Status BeginRamPart();
  // REQUIRES: inside a RAM section; `page` is 4096 bytes; offset page-aligned within the block.
  Status WritePage(uint32_t block_index, uint64_t offset, std::span<const std::byte> page);
  Status WriteZeroPage(uint32_t block_index, uint64_t offset);
  // EOS and the footer.
  Status EndRamSection();

  // Device sections and the EOF byte, exactly as QEMU produced them.
  Status WriteDeviceState(std::span<const std::byte> sections_and_eof);
  // QEMU_VM_VMDESCRIPTION; `json` defaults to the minimal one a standby accepts.
  Status WriteVmDescription(std::string_view json = R"({"page_size": 4096, "devices": []})");

  Status Flush();
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  enum class Stage { kStart, kAfterHeader, kInRamSection, kBetweenRamSections, kAfterDevices, kDone };

  Status WriteRamRecordHeader(uint32_t block_index, uint64_t offset, uint64_t flag);
  void Put(std::string_view bytes);
  Status MaybeFlush();
  Status Refuse(std::string_view what) const;

  ByteSink sink_;
  const size_t buffer_bytes_;
  std::string buffer_;
  uint64_t bytes_written_ = 0;
  Stage stage_ = Stage::kStart;
  bool ignore_shared_ = false;
  uint32_t ram_section_id_ = 0;
  RamBlockList blocks_;
  std::optional<uint32_t> last_block_;  // for CONTINUE
};

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_QEMU_STREAM_WRITER_H_
