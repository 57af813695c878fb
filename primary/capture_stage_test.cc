// The capture stage without QEMU: the stream reader's callbacks, played by hand in the order
// QEMU's COLO stream produces them.
#include "primary/capture_stage.h"

#include <gtest/gtest.h>

#include <array>

namespace understudy::primary {
namespace {

namespace qs = checkpoint::qemu_stream;

std::array<std::byte, 4096> Page(uint8_t fill) {
  std::array<std::byte, 4096> page;
  page.fill(std::byte{fill});
  return page;
}

std::span<const std::byte> Bytes(const std::string& text) { return std::as_bytes(std::span(text.data(), text.size())); }

class CaptureStageTest : public ::testing::Test {
 protected:
  CaptureStageTest() {
    CaptureHooks hooks;
    hooks.ram_section_id = [] { return 7u; };
    hooks.definition_json = [this] { return "definition after seal " + std::to_string(seals_); };
    hooks.seal = [this](EpochCapture& capture) {
      ++seals_;
      // What the agent seals: the output the guest produced up to the stop.
      capture.console_output = {checkpoint::OutputStream::kConsole, 0, "output of " + std::to_string(capture.epoch)};
    };
    hooks.checkpoint_started = [this] { ++checkpoints_started_; };
    hooks.submit = [this](EpochCapture&& capture) { submitted_.push_back(std::move(capture)); };
    hooks.test_drop_page_at_epoch = drop_page_at_;
    stage_ = std::make_unique<CaptureStage>(std::move(hooks));
  }

  void Precopy() {
    ASSERT_TRUE(stage_->OnConfiguration({"pc-i440fx-7.2", {"x-colo"}}).ok());
    ASSERT_TRUE(stage_->OnRamBlocks({{"pc.ram", 1u << 20, std::nullopt}, {"vga.vram", 1u << 16, std::nullopt}}).ok());
    ASSERT_TRUE(stage_->OnRamPage(0, 0, Page(1)).ok());
    ASSERT_TRUE(stage_->OnRamZeroPage(0, 4096, 0).ok());
    ASSERT_TRUE(stage_->OnRamPage(1, 0, Page(2)).ok());
    ASSERT_TRUE(stage_->OnDeviceState(Bytes("devices@1")).ok());
    ASSERT_TRUE(stage_->OnVmDescription("{}", {}).ok());
  }

  void Checkpoint(std::vector<uint64_t> pc_ram_pages, const std::string& devices) {
    ASSERT_TRUE(stage_->OnColoMessage(qs::ColoMessage::kCheckpointRequest).ok());
    ASSERT_TRUE(stage_->OnColoMessage(qs::ColoMessage::kVmstateSend).ok());
    for (uint64_t offset : pc_ram_pages) ASSERT_TRUE(stage_->OnRamPage(0, offset, Page(static_cast<uint8_t>(offset >> 12))).ok());
    ASSERT_TRUE(stage_->OnDeviceState(Bytes(devices)).ok());
  }

  uint64_t drop_page_at_ = 0;
  int seals_ = 0;
  int checkpoints_started_ = 0;
  std::vector<EpochCapture> submitted_;
  std::unique_ptr<CaptureStage> stage_;
};

TEST_F(CaptureStageTest, ThePrecopyIsEpochOneWithWhatTheStandbyIsBuiltFrom) {
  Precopy();
  ASSERT_EQ(submitted_.size(), 1u);
  const EpochCapture& first = submitted_[0];
  EXPECT_EQ(first.epoch, 1u);
  ASSERT_TRUE(first.ram_blocks.has_value());
  EXPECT_EQ(first.ram_blocks->size(), 2u);
  ASSERT_TRUE(first.stream_info.has_value());
  EXPECT_EQ(first.stream_info->ram_section_id, 7u);
  EXPECT_EQ(first.stream_info->machine_type, "pc-i440fx-7.2");
  // The definition is taken after the seal (the seal of epoch 1 fixes the disk's lineage).
  EXPECT_EQ(first.machine_definition_json, "definition after seal 1");
  ASSERT_EQ(first.pages.size(), 3u);
  EXPECT_TRUE(first.pages[1].zero);
  EXPECT_EQ(std::to_integer<int>(first.pages[0].view()[4095]), 1) << "a copy of what the page held";
  EXPECT_EQ(std::to_integer<int>(first.pages[2].view()[0]), 2);
  EXPECT_FALSE(first.chunks.empty()) << "the capture holds the memory its pages point into";
  EXPECT_EQ(first.device_state, "devices@1");
  EXPECT_EQ(first.console_output.bytes, "output of 1");
}

TEST_F(CaptureStageTest, EachCheckpointIsSealedWhenTheVmStopsAndSubmittedWithItsDeviceState) {
  Precopy();
  Checkpoint({0, 8192}, "devices@2");
  Checkpoint({}, "devices@3");
  ASSERT_EQ(submitted_.size(), 3u);
  EXPECT_EQ(checkpoints_started_, 2);
  EXPECT_EQ(seals_, 3);
  const EpochCapture& second = submitted_[1];
  EXPECT_EQ(second.epoch, 2u);
  EXPECT_FALSE(second.ram_blocks.has_value()) << "only epoch 1 describes the machine";
  EXPECT_FALSE(second.machine_definition_json.has_value());
  ASSERT_EQ(second.pages.size(), 2u);
  EXPECT_EQ(second.pages[1].offset, 8192u);
  EXPECT_EQ(second.device_state, "devices@2");
  EXPECT_EQ(second.console_output.bytes, "output of 2");
  EXPECT_NE(second.stopped_at, std::chrono::steady_clock::time_point{});
  EXPECT_EQ(submitted_[2].epoch, 3u);
  EXPECT_TRUE(submitted_[2].pages.empty());
  EXPECT_EQ(submitted_[2].device_state, "devices@3");
}

TEST_F(CaptureStageTest, AFilledPageOtherThanZeroIsRefused) {
  Precopy();
  Status refused = stage_->OnRamZeroPage(0, 0, 0xff);
  EXPECT_EQ(refused.code(), Status::Code::kNotSupported) << refused;
}

TEST(CaptureStageDrop, TheTestSwitchLeavesOutPcRamsHighestPageOfThatEpochOnly) {
  std::vector<EpochCapture> submitted;
  CaptureHooks hooks;
  hooks.submit = [&](EpochCapture&& capture) { submitted.push_back(std::move(capture)); };
  hooks.test_drop_page_at_epoch = 2;
  CaptureStage stage(std::move(hooks));
  ASSERT_TRUE(stage.OnRamBlocks({{"vga.vram", 1u << 16, std::nullopt}, {"pc.ram", 1u << 20, std::nullopt}}).ok());
  ASSERT_TRUE(stage.OnDeviceState(Bytes("d")).ok());
  ASSERT_TRUE(stage.OnVmDescription("{}", {}).ok());
  for (int epoch = 2; epoch <= 3; ++epoch) {
    ASSERT_TRUE(stage.OnColoMessage(qs::ColoMessage::kVmstateSend).ok());
    ASSERT_TRUE(stage.OnRamPage(1, 4096, Page(1)).ok());
    ASSERT_TRUE(stage.OnRamPage(1, 65536, Page(2)).ok());
    ASSERT_TRUE(stage.OnRamPage(0, 1u << 15, Page(3)).ok());  // vga.vram: higher offset, other block
    ASSERT_TRUE(stage.OnDeviceState(Bytes("d")).ok());
  }
  ASSERT_EQ(submitted.size(), 3u);
  ASSERT_EQ(submitted[1].pages.size(), 2u);
  EXPECT_EQ(submitted[1].pages[0].offset, 4096u);
  EXPECT_EQ(submitted[1].pages[1].block, 0u);
  EXPECT_EQ(submitted[2].pages.size(), 3u) << "the switch is for one epoch only";
}

}  // namespace
}  // namespace understudy::primary
