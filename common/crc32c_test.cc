#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace understudy {
namespace {

std::span<const std::byte> Bytes(const std::string& text) { return std::as_bytes(std::span(text.data(), text.size())); }

TEST(Crc32cTest, MatchesRfc3720Vectors) {
  EXPECT_EQ(crc32c::Value(Bytes(std::string(32, '\0'))), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(Bytes(std::string(32, '\xff'))), 0x62a8ab43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c::Value(Bytes(ascending)), 0x46dd794eu);
  EXPECT_EQ(crc32c::Value(Bytes(descending)), 0x113fdb5cu);
  EXPECT_EQ(crc32c::Value(Bytes("123456789")), 0xe3069283u);
}

TEST(Crc32cTest, ExtendingInPiecesEqualsTheWhole) {
  std::string text = "The guest never notices, and no one outside ever sees output taken back.";
  for (size_t split = 0; split <= text.size(); ++split) {
    uint32_t crc = crc32c::Extend(crc32c::Value(Bytes(text.substr(0, split))), Bytes(text.substr(split)));
    EXPECT_EQ(crc, crc32c::Value(Bytes(text))) << "split at " << split;
  }
}

}  // namespace
}  // namespace understudy
