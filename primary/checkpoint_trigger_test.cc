#include "primary/checkpoint_trigger.h"

#include <gtest/gtest.h>

namespace understudy::primary {
namespace {

using std::chrono::milliseconds;
using Cause = CheckpointTrigger::Cause;
using TimePoint = CheckpointTrigger::TimePoint;

const TimePoint kT0 = TimePoint() + std::chrono::hours(1);
constexpr milliseconds kInterval{50};

CheckpointTriggerOptions Options(bool output_triggered = true) {
  CheckpointTriggerOptions options;
  options.min_spacing = milliseconds(5);
  options.output_triggered = output_triggered;
  return options;
}

// A trigger whose last checkpoint started at kT0.
CheckpointTrigger StartedAtT0(bool output_triggered = true) {
  CheckpointTrigger trigger(Options(output_triggered));
  EXPECT_EQ(trigger.Decide(kT0, kInterval).start, Cause::kNone);  // starts the clock
  return trigger;
}

TEST(CheckpointTriggerTest, AnIdleVmGetsOnlyThePeriodicCheckpoints) {
  CheckpointTrigger trigger = StartedAtT0();
  CheckpointTrigger::Decision decision = trigger.Decide(kT0 + milliseconds(10), kInterval);
  EXPECT_EQ(decision.start, Cause::kNone);
  EXPECT_EQ(decision.due, kT0 + kInterval);
  EXPECT_EQ(trigger.Decide(kT0 + kInterval, kInterval).start, Cause::kInterval);
  // The next one is an interval after that start.
  EXPECT_EQ(trigger.Decide(kT0 + kInterval + milliseconds(1), kInterval).due, kT0 + 2 * kInterval);
  EXPECT_EQ(trigger.started_by_interval(), 1u);
  EXPECT_EQ(trigger.started_by_output(), 0u);
}

TEST(CheckpointTriggerTest, HeldOutputStartsOneAtOnceOnceSpacedFromTheLastStart) {
  CheckpointTrigger trigger = StartedAtT0();
  trigger.OnOutputHeld(kT0 + milliseconds(20));
  CheckpointTrigger::Decision decision = trigger.Decide(kT0 + milliseconds(20), kInterval);
  EXPECT_EQ(decision.start, Cause::kOutput);
  EXPECT_EQ(decision.output_waited, milliseconds(0));
  EXPECT_EQ(trigger.started_by_output(), 1u);
}

TEST(CheckpointTriggerTest, OutputRightAfterACheckpointWaitsOutTheSpacing) {
  CheckpointTrigger trigger = StartedAtT0();
  trigger.OnOutputHeld(kT0 + milliseconds(2));
  CheckpointTrigger::Decision early = trigger.Decide(kT0 + milliseconds(2), kInterval);
  EXPECT_EQ(early.start, Cause::kNone);
  EXPECT_EQ(early.due, kT0 + milliseconds(5));
  CheckpointTrigger::Decision due = trigger.Decide(kT0 + milliseconds(5), kInterval);
  EXPECT_EQ(due.start, Cause::kOutput);
  EXPECT_EQ(due.output_waited, milliseconds(3));
}

TEST(CheckpointTriggerTest, TheSpacingRunsFromTheEndOfThePreviousPause) {
  // However long a pause, the VM runs min_spacing before output may stop it again.
  CheckpointTrigger trigger = StartedAtT0();
  trigger.OnCheckpointEnded(kT0 + milliseconds(30));  // a 30 ms pause
  trigger.OnOutputHeld(kT0 + milliseconds(31));
  CheckpointTrigger::Decision early = trigger.Decide(kT0 + milliseconds(31), kInterval);
  EXPECT_EQ(early.start, Cause::kNone);
  EXPECT_EQ(early.due, kT0 + milliseconds(35));
  EXPECT_EQ(trigger.Decide(kT0 + milliseconds(35), kInterval).start, Cause::kOutput);
}

TEST(CheckpointTriggerTest, AnIntervalShorterThanThePauseStillLetsTheVmRun) {
  CheckpointTrigger trigger = StartedAtT0();
  trigger.OnCheckpointEnded(kT0 + milliseconds(20));  // a 20 ms pause, a 10 ms interval
  CheckpointTrigger::Decision decision = trigger.Decide(kT0 + milliseconds(20), milliseconds(10));
  EXPECT_EQ(decision.start, Cause::kNone);
  EXPECT_EQ(decision.due, kT0 + milliseconds(25));
}

TEST(CheckpointTriggerTest, SealedOutputNoLongerHurriesTheNextCheckpoint) {
  CheckpointTrigger trigger = StartedAtT0();
  trigger.OnOutputHeld(kT0 + milliseconds(10));
  ASSERT_EQ(trigger.Decide(kT0 + milliseconds(10), kInterval).start, Cause::kOutput);
  trigger.OnSealing();
  EXPECT_FALSE(trigger.output_pending());
  CheckpointTrigger::Decision next = trigger.Decide(kT0 + milliseconds(20), kInterval);
  EXPECT_EQ(next.start, Cause::kNone);
  EXPECT_EQ(next.due, kT0 + milliseconds(10) + kInterval);
}

TEST(CheckpointTriggerTest, OutputAfterTheSealTriggersTheNextOne) {
  // Output appended after the seal (the frame relay is slower than the stop) is not in the
  // sealed checkpoint: it must hurry the next one.
  CheckpointTrigger trigger = StartedAtT0();
  trigger.OnOutputHeld(kT0 + milliseconds(10));
  ASSERT_EQ(trigger.Decide(kT0 + milliseconds(10), kInterval).start, Cause::kOutput);
  trigger.OnSealing();
  trigger.OnOutputHeld(kT0 + milliseconds(11));
  EXPECT_EQ(trigger.Decide(kT0 + milliseconds(13), kInterval).due, kT0 + milliseconds(15));
  EXPECT_EQ(trigger.Decide(kT0 + milliseconds(15), kInterval).start, Cause::kOutput);
}

TEST(CheckpointTriggerTest, TheRateStaysBoundedWhateverTheGuestPrints) {
  CheckpointTrigger trigger = StartedAtT0();
  int started = 0;
  for (int ms = 0; ms < 1000; ++ms) {
    TimePoint now = kT0 + milliseconds(ms);
    trigger.OnOutputHeld(now);
    if (trigger.Decide(now, kInterval).start != Cause::kNone) {
      ++started;
      trigger.OnSealing();
    }
  }
  EXPECT_LE(started, 200);
  EXPECT_GE(started, 190);
}

TEST(CheckpointTriggerTest, NegativeControlWithoutOutputTriggeringOutputWaitsForTheInterval) {
  CheckpointTrigger trigger = StartedAtT0(/*output_triggered=*/false);
  trigger.OnOutputHeld(kT0 + milliseconds(10));
  EXPECT_FALSE(trigger.output_pending());
  CheckpointTrigger::Decision decision = trigger.Decide(kT0 + milliseconds(10), kInterval);
  EXPECT_EQ(decision.start, Cause::kNone);
  EXPECT_EQ(decision.due, kT0 + kInterval);
}

TEST(CheckpointTriggerTest, AShorterIntervalTakesEffectAtOnce) {
  CheckpointTrigger trigger = StartedAtT0();
  EXPECT_EQ(trigger.Decide(kT0 + milliseconds(12), milliseconds(20)).start, Cause::kNone);
  EXPECT_EQ(trigger.Decide(kT0 + milliseconds(20), milliseconds(20)).start, Cause::kInterval);
}

}  // namespace
}  // namespace understudy::primary
