#include "primary/capture_stage.h"

#include <chrono>
#include <cstdio>

#include "common/log.h"

namespace understudy::primary {

namespace qs = checkpoint::qemu_stream;

CaptureStage::CaptureStage(CaptureHooks hooks, std::shared_ptr<ChunkPool> pool)
    : hooks_(std::move(hooks)), arena_(std::move(pool)) {
  current_.epoch = 1;
}

Status CaptureStage::OnConfiguration(const checkpoint::StreamConfiguration& configuration) {
  stream_info_.machine_type = configuration.machine_type;
  stream_info_.capabilities = configuration.capabilities;
  return Status::Ok();
}

Status CaptureStage::OnRamBlocks(const checkpoint::RamBlockList& blocks) {
  for (uint32_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].id == "pc.ram") pc_ram_block_ = i;
  }
  current_.ram_blocks = blocks;
  return Status::Ok();
}

Status CaptureStage::OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) {
  UNDERSTUDY_ASSIGN_OR_RETURN(const std::byte* kept, arena_.Keep(page));
  current_.AddPage(block, offset, kept);
  return Status::Ok();
}

Status CaptureStage::OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) {
  if (fill != 0) return Status::NotSupported("a RAM page filled with byte " + std::to_string(fill));
  current_.AddZeroPage(block, offset);
  return Status::Ok();
}

Status CaptureStage::OnDeviceState(std::span<const std::byte> state) {
  current_.device_state.assign(reinterpret_cast<const char*>(state.data()), state.size());
  if (precopy_done_ && hooks_.test_drop_page_at_epoch == current_.epoch) TestDropPage();
  if (precopy_done_) Submit();
  return Status::Ok();
}

Status CaptureStage::OnVmDescription(std::string_view, const std::vector<checkpoint::DeviceSectionSpan>&) {
  // The precopy is complete and QEMU keeps the VM stopped until checkpoint-ready.
  stream_info_.ram_section_id = hooks_.ram_section_id ? hooks_.ram_section_id() : 0;
  current_.stream_info = stream_info_;
  Seal();
  if (hooks_.definition_json) current_.machine_definition_json = hooks_.definition_json();
  precopy_done_ = true;
  Submit();
  return Status::Ok();
}

Status CaptureStage::OnColoMessage(qs::ColoMessage message) {
  // vmstate-send comes after QEMU stopped the VM: every byte the guest printed in this epoch
  // has reached the serial socket.
  if (message == qs::ColoMessage::kVmstateSend) Seal();
  if (message != qs::ColoMessage::kCheckpointRequest) return Status::Ok();
  if (hooks_.checkpoint_started) hooks_.checkpoint_started();
  // The VM still runs (it stops at our checkpoint-reply): fault in this checkpoint's memory now.
  return arena_.Prepare().WithContext("preparing memory for a checkpoint's capture");
}

void CaptureStage::Seal() {
  current_.stopped_at = std::chrono::steady_clock::now();
  if (hooks_.seal) hooks_.seal(current_);
}

void CaptureStage::Submit() {
  uint64_t next = current_.epoch + 1;
  current_.chunks = arena_.TakeEpochChunks();
  hooks_.submit(std::move(current_));
  current_ = EpochCapture{};
  current_.epoch = next;
}

void CaptureStage::TestDropPage() {
  auto highest = current_.pages.end();
  for (auto page = current_.pages.begin(); page != current_.pages.end(); ++page) {
    if (page->block == pc_ram_block_ && (highest == current_.pages.end() || page->offset > highest->offset)) highest = page;
  }
  if (highest == current_.pages.end()) return;
  char offset[24];
  std::snprintf(offset, sizeof(offset), "0x%llx", static_cast<unsigned long long>(highest->offset));
  Log("primary", "TEST ONLY: leaving the page of pc.ram at offset " + std::string(offset) + " out of epoch " +
                     std::to_string(current_.epoch));
  current_.pages.erase(highest);  // its bytes stay in the chunks, unreferenced
}

}  // namespace understudy::primary
