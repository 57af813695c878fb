#include "primary/pause_phases.h"

#include <gtest/gtest.h>

namespace understudy::primary {
namespace {

using std::chrono::microseconds;

CheckpointTiming Timing(int stop_us, int ram_us, int device_us, int busy_us) {
  CheckpointTiming timing;
  timing.reply_sent = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  timing.vmstate_send_seen = timing.reply_sent + microseconds(stop_us);
  timing.ram_end_seen = timing.vmstate_send_seen + microseconds(ram_us);
  timing.loaded_sent = timing.ram_end_seen + microseconds(device_us);
  timing.agent_busy = microseconds(busy_us);
  return timing;
}

TEST(PausePhasesTest, SplitsThePauseIntoItsPhases) {
  PausePhases phases;
  for (int i = 0; i < 9; ++i) phases.Add(Timing(500, 4000, 1000, 2000));
  phases.Add(Timing(500, 40000, 1000, 2000));  // one slow RAM transfer
  nlohmann::json json = phases.ToJson();
  EXPECT_EQ(json["checkpoints"], 10);
  EXPECT_DOUBLE_EQ(json["stop"]["p50"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(json["ram"]["p50"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(json["ram"]["p99"].get<double>(), 40.0);
  EXPECT_DOUBLE_EQ(json["device_state"]["p50"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(json["agent_busy"]["p50"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(json["waiting_for_qemu"]["p50"].get<double>(), 3.5);  // 5.5 ms pause - 2 busy
}

TEST(PausePhasesTest, CheckpointsWithoutTheirStampsAreLeftOut) {
  PausePhases phases;
  CheckpointTiming unstamped = Timing(500, 4000, 1000, 2000);
  unstamped.ram_end_seen = {};  // no RAM section seen
  phases.Add(unstamped);
  EXPECT_EQ(phases.ToJson()["checkpoints"], 0);
}

TEST(PausePhasesTest, KeepsOnlyTheMostRecent) {
  PausePhases phases(3);
  phases.Add(Timing(9000, 1, 1, 1));
  for (int i = 0; i < 3; ++i) phases.Add(Timing(100, 1, 1, 1));
  EXPECT_DOUBLE_EQ(phases.ToJson()["stop"]["p99"].get<double>(), 0.1);
}

}  // namespace
}  // namespace understudy::primary
