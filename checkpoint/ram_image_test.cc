#include "checkpoint/ram_image.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "checkpoint/checkpoint_test_util.h"
#include "checkpoint/page_codec.h"

namespace understudy::checkpoint {
namespace {

std::vector<std::byte> PageOf(uint8_t value) { return std::vector<std::byte>(4096, std::byte{value}); }

TEST(RamImageTest, StagedPagesStayInvisibleUntilCommit) {
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  RamImage& ram = **image;
  ASSERT_TRUE(ram.StagePage(0, 8192, PageOf(0xab)).ok());
  EXPECT_TRUE(IsZeroPage(ram.CommittedPage(0, 8192)));
  EXPECT_EQ(ram.LatestPage(0, 8192)[0], std::byte{0xab});
  EXPECT_EQ(ram.staged().count(), 1u);
  ram.CommitStaged(1);
  EXPECT_EQ(ram.committed_epoch(), 1u);
  EXPECT_EQ(ram.CommittedPage(0, 8192)[4095], std::byte{0xab});
  EXPECT_EQ(ram.staged().count(), 0u);
}

TEST(RamImageTest, CloneHoldsTheCommittedStateAloneAndStaysPut) {
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  RamImage& ram = **image;
  ASSERT_TRUE(ram.StagePage(0, 8192, PageOf(0xab)).ok());
  ASSERT_TRUE(ram.StagePage(1, 0, PageOf(0x11)).ok());
  ram.CommitStaged(3);
  ASSERT_TRUE(ram.StagePage(0, 4096, PageOf(0xcd)).ok());  // staged, not committed: not cloned
  auto clone = ram.CloneCommitted();
  ASSERT_TRUE(clone.ok()) << clone.status();
  EXPECT_EQ((*clone)->committed_epoch(), 3u);
  EXPECT_EQ((*clone)->CommittedPage(0, 8192)[17], std::byte{0xab});
  EXPECT_EQ((*clone)->CommittedPage(1, 0)[4095], std::byte{0x11});
  EXPECT_TRUE(IsZeroPage((*clone)->CommittedPage(0, 4096)));
  // The original moves on; the snapshot does not.
  ram.CommitStaged(4);
  ASSERT_TRUE(ram.StagePage(0, 8192, PageOf(0x77)).ok());
  ram.CommitStaged(5);
  EXPECT_EQ((*clone)->CommittedPage(0, 8192)[0], std::byte{0xab});
  EXPECT_TRUE(IsZeroPage((*clone)->CommittedPage(0, 4096)));
}

TEST(RamImageTest, DiscardLeavesCommittedMemoryUntouched) {
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  RamImage& ram = **image;
  ASSERT_TRUE(ram.StagePage(1, 0, PageOf(1)).ok());
  ram.CommitStaged(1);
  ASSERT_TRUE(ram.StagePage(1, 0, PageOf(2)).ok());
  ASSERT_TRUE(ram.StageZeroPage(0, 4096).ok());
  ram.DiscardStaged();
  EXPECT_EQ(ram.CommittedPage(1, 0)[0], std::byte{1});
  EXPECT_EQ(ram.LatestPage(1, 0)[0], std::byte{1});
  EXPECT_EQ(ram.committed_epoch(), 1u);
}

TEST(RamImageTest, StagingTwiceKeepsTheLastVersion) {
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  RamImage& ram = **image;
  ASSERT_TRUE(ram.StagePage(0, 0, PageOf(1)).ok());
  ASSERT_TRUE(ram.StageZeroPage(0, 0).ok());
  ASSERT_TRUE(ram.StagePage(0, 0, PageOf(3)).ok());
  EXPECT_EQ(ram.staged().count(), 1u);
  ram.CommitStaged(1);
  EXPECT_EQ(ram.CommittedPage(0, 0)[0], std::byte{3});
}

TEST(RamImageTest, ZeroPagesBecomeHolesAndTheMemfdShowsCommittedMemory) {
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  RamImage& ram = **image;
  uint64_t empty = ram.ResidentBytes();
  for (uint64_t offset = 0; offset < (1u << 20); offset += 4096) ASSERT_TRUE(ram.StagePage(0, offset, PageOf(7)).ok());
  ram.CommitStaged(1);
  EXPECT_GE(ram.ResidentBytes(), empty + (1u << 20));
  for (uint64_t offset = 0; offset < (1u << 20); offset += 4096) ASSERT_TRUE(ram.StageZeroPage(0, offset).ok());
  ram.CommitStaged(2);
  EXPECT_LE(ram.ResidentBytes(), empty + 4096) << "zero pages must be holes, not resident zeros";
  EXPECT_TRUE(IsZeroPage(ram.CommittedPage(0, 0)));

  // What a standby mapping the memfd would see.
  ASSERT_TRUE(ram.StagePage(0, 12288, PageOf(0x5a)).ok());
  ram.CommitStaged(3);
  std::byte seen[4096];
  ASSERT_EQ(::pread(ram.block_fd(0), seen, sizeof(seen), 12288), 4096);
  EXPECT_EQ(seen[100], std::byte{0x5a});
}

TEST(RamImageTest, OutOfRangeStagingIsRefused) {
  auto image = RamImage::Create(testing::SampleBlocks());
  ASSERT_TRUE(image.ok());
  EXPECT_EQ((*image)->StagePage(9, 0, PageOf(1)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ((*image)->StagePage(0, 8u << 20, PageOf(1)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ((*image)->StagePage(0, 100, PageOf(1)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ((*image)->StageZeroPage(2, 128u << 10).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ((*image)->staged().count(), 0u);
  EXPECT_FALSE(RamImage::Create({{"odd", 1000, std::nullopt}}).ok());
}

TEST(DirtyPageSetTest, IteratesInOrderAndCountsOnce) {
  DirtyPageSet set(testing::SampleBlocks());
  std::vector<std::pair<uint32_t, uint64_t>> expected = {{0, 0}, {0, 63}, {0, 64}, {0, 2047}, {1, 5}, {2, 31}};
  for (auto it = expected.rbegin(); it != expected.rend(); ++it) set.Set(it->first, it->second);
  set.Set(0, 63);
  EXPECT_EQ(set.count(), expected.size());
  std::vector<std::pair<uint32_t, uint64_t>> seen;
  set.ForEach([&](uint32_t block, uint64_t page) { seen.push_back({block, page}); });
  EXPECT_EQ(seen, expected);
  EXPECT_TRUE(set.Test(1, 5));
  EXPECT_FALSE(set.Test(1, 6));
  set.Clear();
  EXPECT_EQ(set.count(), 0u);
}

TEST(PageCodecTest, EachEncodingDecodesBackToThePage) {
  std::mt19937_64 random(1);
  std::vector<std::byte> page(4096), previous(4096), out(4096);
  for (int trial = 0; trial < 200; ++trial) {
    testing::FillPage(random, previous);
    page = previous;
    if (trial % 3 == 0) testing::FillPage(random, page);
    page[random() % 4096] ^= std::byte{0x10};
    EncodedPage encoded = EncodePage(4096, page, trial % 2 ? previous : std::vector<std::byte>{});
    ASSERT_TRUE(DecodePage(encoded, previous, out).ok());
    ASSERT_EQ(out, page) << "encoding " << format::PageEncodingName(encoded.encoding);
    EXPECT_LE(encoded.bytes.size(), 4096u);
  }
}

TEST(PageCodecTest, SmallChangesBecomeTinyDeltas) {
  std::vector<std::byte> previous(4096), page(4096);
  for (size_t i = 0; i < 4096; ++i) previous[i] = std::byte(static_cast<uint8_t>(i * 7 + (i >> 3)));
  page = previous;
  page[64] = std::byte{0xff};
  EncodedPage encoded = EncodePage(0, page, previous);
  EXPECT_EQ(encoded.encoding, format::PageEncoding::kXorLz4);
  EXPECT_LT(encoded.bytes.size(), 40u);
}

TEST(PageCodecTest, BadLz4IsCorruptionNotACrash) {
  EncodedPage encoded{0, format::PageEncoding::kLz4, std::string(50, '\xff')};
  std::vector<std::byte> out(4096);
  Status status = DecodePage(encoded, {}, out);
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  encoded.encoding = format::PageEncoding::kXorLz4;
  encoded.bytes = std::string(1, '\0');
  EXPECT_EQ(DecodePage(encoded, {}, out).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace understudy::checkpoint
