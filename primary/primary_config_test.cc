#include "primary/primary_config.h"

#include <gtest/gtest.h>

namespace understudy::primary {
namespace {

nlohmann::json Minimal() {
  return {{"vm", qemu::VmDefinition{}.ToJson()},
          {"secondary", "tcp://127.0.0.1:7400"},
          {"insecure", true},
          {"runtime_dir", "/run/understudy/test"}};
}

TEST(PrimaryConfigTest, OutputTriggeredCheckpointsAreOnByDefaultFiveMillisecondsApart) {
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(Minimal());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->output_triggered_checkpoints);
  EXPECT_EQ(config->min_checkpoint_spacing_ms, 5u);
}

TEST(PrimaryConfigTest, OutputTriggeredCheckpointsCanBeTurnedOffAndSpaced) {
  nlohmann::json json = Minimal();
  json["output_triggered_checkpoints"] = false;
  json["min_checkpoint_spacing_ms"] = 12;
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->output_triggered_checkpoints);
  EXPECT_EQ(config->min_checkpoint_spacing_ms, 12u);
}

TEST(PrimaryConfigTest, AZeroSpacingIsRefused) {
  nlohmann::json json = Minimal();
  json["min_checkpoint_spacing_ms"] = 0;
  Result<PrimaryConfig> config = PrimaryConfig::FromJson(json);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "min_checkpoint_spacing_ms must be positive");
}

}  // namespace
}  // namespace understudy::primary
