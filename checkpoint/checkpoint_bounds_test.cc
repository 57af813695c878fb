// Peer-supplied offsets and sizes against the secondary's RAM image (issue 16): a page offset
// that wraps 64-bit arithmetic and a RAM block of 2^46 bytes are refused by decode + apply,
// and the committed image is unchanged.
#include <gtest/gtest.h>

#include <cstring>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "checkpoint/ram_image.h"

namespace understudy::checkpoint {
namespace {

constexpr uint64_t kWrappingOffset = 0xFFFFFFFFFFFFF000ull;  // + 4096 wraps to 0

RamBlockList Blocks() { return {{"pc.ram", 1u << 20, std::nullopt}, {"vga.vram", 64u << 10, std::nullopt}}; }

EncodedPage RawPage(uint64_t offset, char fill) {
  return EncodedPage{offset, format::PageEncoding::kRaw, std::string(4096, fill)};
}

// The bytes a peer would send, through the real encoder.
std::string Wire(const Checkpoint& checkpoint) { return SerializeCheckpoint(checkpoint); }

Result<Checkpoint> Decode(const std::string& wire) { return ParseCheckpoint(std::as_bytes(std::span(wire))); }

// A committed image at epoch 1 whose every page holds a known pattern.
std::unique_ptr<RamImage> CommittedImage() {
  auto image = RamImage::Create(Blocks());
  EXPECT_TRUE(image.ok());
  Checkpoint first;
  first.epoch = 1;
  first.full = true;
  for (uint32_t block = 0; block < Blocks().size(); ++block) {
    PageRun run{block, {}};
    for (uint64_t offset = 0; offset < Blocks()[block].used_length; offset += 4096) {
      run.pages.push_back(RawPage(offset, static_cast<char>('a' + block)));
    }
    first.page_runs.push_back(std::move(run));
  }
  EXPECT_TRUE(ApplyCheckpoint(first, **image).ok());
  return std::move(*image);
}

std::string Snapshot(const RamImage& image) {
  std::string all;
  for (uint32_t block = 0; block < image.blocks().size(); ++block) {
    for (uint64_t offset = 0; offset < image.blocks()[block].used_length; offset += 4096) {
      std::span<const std::byte> page = image.CommittedPage(block, offset);
      all.append(reinterpret_cast<const char*>(page.data()), page.size());
    }
  }
  return all;
}

TEST(CheckpointBoundsTest, AWrappingPageOffsetIsRefusedByDecodeAndApplyAndTheImageIsUnchanged) {
  std::unique_ptr<RamImage> image = CommittedImage();
  const std::string before = Snapshot(*image);

  // With the block list alongside, decode itself refuses it.
  Checkpoint with_blocks;
  with_blocks.epoch = 2;
  with_blocks.ram_blocks = Blocks();
  with_blocks.page_runs = {PageRun{0, {RawPage(kWrappingOffset, 'X')}}};
  Result<Checkpoint> decoded = Decode(Wire(with_blocks));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("beyond block"), std::string::npos) << decoded.status();

  // A delta checkpoint carries no block list: decode passes it, apply must refuse it.
  Checkpoint delta;
  delta.epoch = 2;
  delta.page_runs = {PageRun{0, {RawPage(0, 'Y'), RawPage(kWrappingOffset, 'X')}}};
  decoded = Decode(Wire(delta));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  Status applied = ApplyCheckpoint(*decoded, *image);
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.message().find("outside block 'pc.ram'"), std::string::npos) << applied;
  EXPECT_EQ(image->committed_epoch(), 1u);
  EXPECT_EQ(image->staged().count(), 0u);
  EXPECT_TRUE(Snapshot(*image) == before) << "a refused checkpoint changed committed memory";

  // The image's own staging refuses it too (the last line of defence before CommitStaged).
  std::string page(4096, 'Z');
  EXPECT_FALSE(image->StagePage(0, kWrappingOffset, std::as_bytes(std::span(page))).ok());
  EXPECT_FALSE(image->StageZeroPage(0, kWrappingOffset).ok());
  EXPECT_FALSE(image->StagePage(0, (1u << 20) - 2048, std::as_bytes(std::span(page))).ok());

  // The control: the same delta without the bad page applies.
  delta.page_runs = {PageRun{0, {RawPage(0, 'Y')}}};
  ASSERT_TRUE(ApplyCheckpoint(*Decode(Wire(delta)), *image).ok());
  EXPECT_EQ(static_cast<char>(image->CommittedPage(0, 0)[0]), 'Y');
}

TEST(CheckpointBoundsTest, AHugeRamBlockIsRefusedBeforeAnythingIsAllocated) {
  Checkpoint first;
  first.epoch = 1;
  first.ram_blocks = RamBlockList{{"pc.ram", uint64_t{1} << 46, std::nullopt}};
  Result<Checkpoint> decoded = Decode(Wire(first));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("cap"), std::string::npos) << decoded.status();
  // Many blocks that are each allowed but add up past the cap.
  first.ram_blocks = RamBlockList{};
  for (int i = 0; i < 2; ++i) first.ram_blocks->push_back({"b" + std::to_string(i), format::kMaxRamBytes, std::nullopt});
  EXPECT_FALSE(Decode(Wire(first)).ok());

  // The image refuses it as well, and bounds by the VM's memory when told to.
  EXPECT_FALSE(RamImage::Create({{"pc.ram", uint64_t{1} << 46, std::nullopt}}).ok());
  EXPECT_FALSE(RamImage::Create({{"a", UINT64_MAX - 4095, std::nullopt}, {"b", 8192, std::nullopt}}).ok());
  const uint64_t limit = RamImage::MaxImageBytes(64);
  EXPECT_TRUE(RamImage::Create({{"pc.ram", 64u << 20, std::nullopt}, {"vram", 16u << 20, std::nullopt}}, limit).ok());
  Result<std::unique_ptr<RamImage>> too_big = RamImage::Create({{"pc.ram", 2048u << 20, std::nullopt}}, limit);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("limit"), std::string::npos) << too_big.status();
}

}  // namespace
}  // namespace understudy::checkpoint
