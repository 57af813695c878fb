#include "primary/checkpoint_pacer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace understudy::primary {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

CheckpointPacerOptions Options(double interval_ms, bool output_triggered = true) {
  CheckpointPacerOptions options;
  options.trigger.min_spacing = milliseconds(5);
  options.trigger.output_triggered = output_triggered;
  options.adaptive.max_interval_ms = interval_ms;
  options.adaptive.min_interval_ms = 5;
  return options;
}

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

TEST(CheckpointPacerTest, TheIntervalBoundsTheWait) {
  CheckpointPacer pacer(Options(30));
  Clock::time_point start = Clock::now();
  ASSERT_TRUE(pacer.WaitUntilDue(Deadline::AfterMillis(5000)).ok());  // starts the clock
  ASSERT_TRUE(pacer.WaitUntilDue(Deadline::AfterMillis(5000)).ok());
  EXPECT_GE(MillisSince(start), 30);
  EXPECT_EQ(pacer.stats().started_by_interval, 2u);
}

TEST(CheckpointPacerTest, HeldOutputEndsTheWaitAtOnce) {
  // A 20 s interval: only the output can end the wait within the test's budget.
  CheckpointPacer pacer(Options(20000));
  ASSERT_EQ(pacer.WaitUntilDue(Deadline::AfterMillis(10)).code(), Status::Code::kDeadlineExceeded);
  std::this_thread::sleep_for(milliseconds(10));  // past the minimum spacing
  std::atomic<bool> returned{false};
  Status waited;
  std::thread colo_peer([&] {
    waited = pacer.WaitUntilDue(Deadline::AfterMillis(10000));
    returned.store(true);
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(returned.load());
  Clock::time_point held = Clock::now();
  pacer.OutputHeld();
  colo_peer.join();
  EXPECT_TRUE(waited.ok()) << waited.ToString();
  EXPECT_LT(MillisSince(held), 1000);
  PacerStats stats = pacer.stats();
  EXPECT_EQ(stats.started_by_output, 1u);
  EXPECT_LT(stats.output_wait_ms_p50, 1000);
}

TEST(CheckpointPacerTest, NegativeControlOutputDoesNotHurryWhenNothingWaitsForAnAck) {
  CheckpointPacerOptions options = Options(20000);
  options.output_waits_for_ack = [] { return false; };  // unprotected: output goes out anyway
  CheckpointPacer pacer(std::move(options));
  ASSERT_EQ(pacer.WaitUntilDue(Deadline::AfterMillis(10)).code(), Status::Code::kDeadlineExceeded);
  std::this_thread::sleep_for(milliseconds(10));
  pacer.OutputHeld();
  EXPECT_EQ(pacer.WaitUntilDue(Deadline::AfterMillis(200)).code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(pacer.stats().started_by_output, 0u);
}

TEST(CheckpointPacerTest, StopEndsAWait) {
  CheckpointPacer pacer(Options(20000));
  ASSERT_EQ(pacer.WaitUntilDue(Deadline::AfterMillis(1)).code(), Status::Code::kDeadlineExceeded);
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(30));
    pacer.Stop();
  });
  Clock::time_point start = Clock::now();
  EXPECT_TRUE(pacer.WaitUntilDue(Deadline::AfterMillis(10000)).ok());
  EXPECT_LT(MillisSince(start), 5000);
  stopper.join();
}

TEST(CheckpointPacerTest, CheckpointsFeedTheAdaptiveInterval) {
  CheckpointPacerOptions options = Options(50);
  options.adaptive.max_pause_ms = 10;
  CheckpointPacer pacer(std::move(options));
  // Every checkpoint after 50 ms of running carries 8192 pages and pauses the VM 21 ms.
  Clock::time_point t = Clock::now();
  for (uint64_t n = 1; n <= 50; ++n) {
    CheckpointTiming timing;
    timing.number = n;
    timing.pages = 8192;
    timing.reply_sent = t + milliseconds(50);
    timing.loaded_sent = timing.reply_sent + milliseconds(21);
    pacer.OnCheckpoint(timing);
    t = timing.loaded_sent;
  }
  PacerStats stats = pacer.stats();
  EXPECT_TRUE(stats.adaptive);
  EXPECT_LT(stats.interval_ms, 25);
  EXPECT_NEAR(stats.adaptive_report.dirty_pages_per_ms, 8192.0 / 50, 1);
  EXPECT_FALSE(stats.adaptive_report.meeting_target);  // these pauses all missed it
}

}  // namespace
}  // namespace understudy::primary
