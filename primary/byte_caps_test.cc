// ByteCaps: the configured caps and which one a usage crosses (issue 16, item 5).
#include "primary/byte_caps.h"

#include <gtest/gtest.h>

namespace understudy::primary {
namespace {

using nlohmann::json;

TEST(ByteCapsTest, DefaultsAndConfiguredValuesInMib) {
  Result<ByteCaps> caps = ByteCaps::FromJson(json::object());
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(caps->in_flight_bytes, uint64_t{1024} << 20);
  EXPECT_EQ(caps->held_output_bytes, uint64_t{512} << 20);
  EXPECT_EQ(caps->unshipped_disk_bytes, uint64_t{512} << 20);
  caps = ByteCaps::FromJson({{"byte_caps", {{"in_flight_mib", 64}, {"held_output_mib", 8}, {"unshipped_disk_mib", 16}}}});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(caps->in_flight_bytes, uint64_t{64} << 20);
  EXPECT_EQ(caps->held_output_bytes, uint64_t{8} << 20);
  EXPECT_EQ(caps->unshipped_disk_bytes, uint64_t{16} << 20);
}

TEST(ByteCapsTest, BadValuesAreErrorsNamingTheField) {
  for (const json& bad : {json{{"byte_caps", {{"held_output_mib", 0}}}}, json{{"byte_caps", {{"held_output_mib", "x"}}}},
                          json{{"byte_caps", {{"held_output_mib", 1u << 21}}}}}) {
    Result<ByteCaps> caps = ByteCaps::FromJson(bad);
    ASSERT_FALSE(caps.ok()) << bad.dump();
    EXPECT_NE(caps.status().message().find("held_output_mib"), std::string::npos) << caps.status();
  }
  EXPECT_FALSE(ByteCaps::FromJson({{"byte_caps", 5}}).ok());
}

TEST(ByteCapsTest, TheCapCrossedIsNamedAndAtTheCapNothingIs) {
  ByteCaps caps{100, 200, 300};
  EXPECT_FALSE(CrossedCap(caps, {100, 200, 300})) << "at each cap exactly: nothing crossed";
  std::optional<CapCrossing> crossed = CrossedCap(caps, {0, 201, 0});
  ASSERT_TRUE(crossed);
  EXPECT_EQ(crossed->cap, "held_output");
  EXPECT_NE(crossed->why.find("201"), std::string::npos) << crossed->why;
  EXPECT_EQ(CrossedCap(caps, {101, 0, 0})->cap, "in_flight");
  EXPECT_EQ(CrossedCap(caps, {0, 0, 301})->cap, "unshipped_disk");
  EXPECT_FALSE(CrossedFrameCap(3, 1000, 1000));
  ASSERT_TRUE(CrossedFrameCap(3, 1001, 1000));
  EXPECT_EQ(CrossedFrameCap(3, 1001, 1000)->cap, "frame");
}

}  // namespace
}  // namespace understudy::primary
