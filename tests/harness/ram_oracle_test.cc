// The page comparison under the RAM-equality oracle: what it compares, skips and reports.
#include "tests/harness/ram_oracle.h"

#include <gtest/gtest.h>

namespace understudy::testing {
namespace {

constexpr size_t kBytes = 8u << 20;  // 8 MiB: 2048 pages

std::vector<std::byte> Pattern() {
  std::vector<std::byte> bytes(kBytes);
  for (size_t i = 0; i < bytes.size(); i += 4096) bytes[i] = std::byte{static_cast<unsigned char>(i >> 12 | 1)};
  return bytes;
}

TEST(RamOracleTest, EqualImagesCompareEqualExceptTheLegacyWindowWhichIsSkipped) {
  std::vector<std::byte> primary = Pattern(), secondary = Pattern();
  primary[0xB8000] = std::byte{0x41};  // the VGA text buffer as pmemsave reads it: not pc.ram
  RamComparison result = ComparePcRam(primary, secondary);
  EXPECT_TRUE(result.equal()) << result.Describe();
  EXPECT_EQ(result.pages_skipped, 96u);
  EXPECT_EQ(result.pages_compared, 2048u - 96u);
  EXPECT_EQ(result.nonzero_pages, 2048u - 96u);
}

TEST(RamOracleTest, NamesTheDifferingPagesByGuestPhysicalAddress) {
  std::vector<std::byte> primary = Pattern(), secondary = Pattern();
  secondary[0x400000 + 17] ^= std::byte{1};
  secondary[0x9F000] ^= std::byte{1};  // the last page below the window is compared
  secondary[0x100000] ^= std::byte{1};  // and the first above it
  RamComparison result = ComparePcRam(primary, secondary);
  EXPECT_FALSE(result.equal());
  EXPECT_EQ(result.pages_differing, 3u);
  EXPECT_EQ(result.first_differing, (std::vector<uint64_t>{0x9F000, 0x100000, 0x400000}));
  EXPECT_NE(result.Describe().find("0x400000"), std::string::npos) << result.Describe();
}

}  // namespace
}  // namespace understudy::testing
