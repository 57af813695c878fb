// CaptureStage: the primary's capture of each epoch from QEMU's COLO stream. ColoPeer parses
// the stream and calls this visitor; it keeps pages (as views into the capture arena, which
// ColoPeer reads the stream into: arena()) and copies device state into an EpochCapture,
// has the epoch's output and disk writes sealed into it at the moment the VM is stopped, and
// submits each complete epoch (to the CheckpointShipper, in the agent).
//
// Epoch 1 is the precopy (the whole image) and also carries what the secondary builds its
// standby from (RAM blocks, stream info, the machine definition); each later epoch is one
// COLO checkpoint. Everything here runs inside the VM's pause: views and copies only, nothing
// slower; the arena faults in its memory for the next checkpoint at checkpoint-request, before
// the VM stops.
//
// Thread safety: not thread-safe; ColoPeer's thread only (the hooks are called from there).
#ifndef UNDERSTUDY_PRIMARY_CAPTURE_STAGE_H_
#define UNDERSTUDY_PRIMARY_CAPTURE_STAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/qemu_stream_reader.h"
#include "primary/capture_arena.h"
#include "primary/epoch_capture.h"

namespace understudy::primary {

struct CaptureHooks {
  // The stream's RAM section id (ColoPeer's reader knows it once the precopy is parsed).
  std::function<uint32_t()> ram_section_id;
  // The machine as the secondary builds its standby (epoch 1 only), called after `seal`.
  std::function<std::string()> definition_json;
  // The VM is stopped for `capture`: move the epoch's output and disk writes into it.
  std::function<void(EpochCapture& capture)> seal;
  // QEMU started a checkpoint (a COLO checkpoint-request).
  std::function<void()> checkpoint_started;
  // A complete epoch. REQUIRES: set.
  std::function<void(EpochCapture&& capture)> submit;
  // TEST ONLY: leave pc.ram's highest dirty page out of this epoch (incomplete dirty
  // tracking, which the RAM-equality oracle must catch). 0: never.
  uint64_t test_drop_page_at_epoch = 0;
};

class CaptureStage : public checkpoint::QemuStreamVisitor {
 public:
  // Chunks come from `pool` (a pool of its own when none is given).
  explicit CaptureStage(CaptureHooks hooks, std::shared_ptr<ChunkPool> pool = ChunkPool::Create());

  // What ColoPeer must read the stream into for pages to be kept without a copy. Pages
  // parsed from other memory are copied into it.
  CaptureArena& arena() { return arena_; }

  Status OnConfiguration(const checkpoint::StreamConfiguration& configuration) override;
  Status OnRamBlocks(const checkpoint::RamBlockList& blocks) override;
  Status OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) override;
  Status OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) override;
  Status OnDeviceState(std::span<const std::byte> state) override;
  Status OnVmDescription(std::string_view description,
                         const std::vector<checkpoint::DeviceSectionSpan>& sections) override;
  Status OnColoMessage(checkpoint::qemu_stream::ColoMessage message) override;

 private:
  void Seal();
  void Submit();
  void TestDropPage();

  CaptureHooks hooks_;
  CaptureArena arena_;
  uint32_t pc_ram_block_ = UINT32_MAX;
  EpochCapture current_;
  checkpoint::QemuStreamInfo stream_info_;
  bool precopy_done_ = false;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CAPTURE_STAGE_H_
