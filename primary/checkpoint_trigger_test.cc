#include "primary/checkpoint_trigger.h"

#include <gtest/gtest.h>

#include <vector>

namespace understudy::primary {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using TimePoint = CheckpointTrigger::TimePoint;

const TimePoint kT0 = TimePoint() + std::chrono::hours(1);

CheckpointTriggerOptions Options() {
  CheckpointTriggerOptions options;
  options.min_spacing = milliseconds(5);
  options.max_in_flight = 4;
  options.request_retry = milliseconds(25);
  return options;
}

// A trigger past the initial precopy, idle.
CheckpointTrigger Ready() {
  CheckpointTrigger trigger(Options());
  trigger.OnCheckpointFinished();
  return trigger;
}

// One whole checkpoint as the COLO peer reports it.
void RunCheckpoint(CheckpointTrigger& trigger, TimePoint start) {
  trigger.OnCheckpointStarted(start);
  trigger.OnSealing();
  trigger.OnCheckpointFinished();
}

TEST(CheckpointTriggerTest, HeldOutputOnAnIdleVmIsRequestedAtOnce) {
  CheckpointTrigger trigger = Ready();
  EXPECT_FALSE(trigger.Poll(kT0, 0).request);
  trigger.OnOutputHeld();
  CheckpointTrigger::Decision decision = trigger.Poll(kT0, 0);
  EXPECT_TRUE(decision.request);
  EXPECT_EQ(trigger.requests(), 1u);
}

TEST(CheckpointTriggerTest, NothingIsRequestedDuringTheInitialPrecopy) {
  CheckpointTrigger trigger(Options());
  trigger.OnOutputHeld();
  CheckpointTrigger::Decision decision = trigger.Poll(kT0, 0);
  EXPECT_FALSE(decision.request);
  EXPECT_FALSE(decision.recheck.has_value());  // the precopy's end is an event
  trigger.OnCheckpointFinished();
  EXPECT_TRUE(trigger.Poll(kT0 + milliseconds(1), 0).request);
}

TEST(CheckpointTriggerTest, IdleVmGetsOnlyThePeriodicCheckpoints) {
  CheckpointTrigger trigger = Ready();
  for (int i = 0; i < 200; ++i) {
    TimePoint start = kT0 + milliseconds(50) * i;
    RunCheckpoint(trigger, start);
    for (int ms = 0; ms < 50; ++ms) {
      CheckpointTrigger::Decision decision = trigger.Poll(start + milliseconds(ms), 0);
      ASSERT_FALSE(decision.request) << "checkpoint " << i << " + " << ms << " ms";
      ASSERT_FALSE(decision.recheck.has_value());
    }
  }
  EXPECT_EQ(trigger.requests(), 0u);
}

TEST(CheckpointTriggerTest, OutputHeldDuringACheckpointTriggersOneRightAfterIt) {
  CheckpointTrigger trigger = Ready();
  trigger.OnCheckpointStarted(kT0);
  trigger.OnSealing();
  trigger.OnOutputHeld();  // after the seal: not in this checkpoint
  CheckpointTrigger::Decision during = trigger.Poll(kT0 + milliseconds(1), 0);
  EXPECT_FALSE(during.request) << "a request during a checkpoint would be wiped by QEMU's event reset";
  EXPECT_FALSE(during.recheck.has_value());
  trigger.OnCheckpointFinished();
  // 8 ms after the start: the spacing allows it at once.
  EXPECT_TRUE(trigger.Poll(kT0 + milliseconds(8), 0).request);
  EXPECT_EQ(trigger.requests(), 1u);
}

TEST(CheckpointTriggerTest, AfterAShortCheckpointTheNextWaitsForTheSpacing) {
  CheckpointTrigger trigger = Ready();
  trigger.OnCheckpointStarted(kT0);
  trigger.OnSealing();
  trigger.OnOutputHeld();
  trigger.OnCheckpointFinished();
  CheckpointTrigger::Decision early = trigger.Poll(kT0 + milliseconds(2), 0);
  EXPECT_FALSE(early.request);
  ASSERT_TRUE(early.recheck.has_value());
  EXPECT_EQ(*early.recheck, kT0 + milliseconds(5));
  EXPECT_TRUE(trigger.Poll(*early.recheck, 0).request);
}

TEST(CheckpointTriggerTest, OutputSealedIntoACheckpointNeedsNoOtherOne) {
  CheckpointTrigger trigger = Ready();
  trigger.OnOutputHeld();
  ASSERT_TRUE(trigger.Poll(kT0, 0).request);
  trigger.OnCheckpointStarted(kT0 + milliseconds(2));
  trigger.OnSealing();  // takes the output
  trigger.OnCheckpointFinished();
  for (int ms = 3; ms < 100; ++ms) ASSERT_FALSE(trigger.Poll(kT0 + milliseconds(ms), 1).request);
  EXPECT_EQ(trigger.requests(), 1u);
}

TEST(CheckpointTriggerTest, AFullInFlightWindowWaitsForAnAck) {
  CheckpointTrigger trigger = Ready();
  trigger.OnOutputHeld();
  CheckpointTrigger::Decision full = trigger.Poll(kT0, 4);
  EXPECT_FALSE(full.request);
  EXPECT_FALSE(full.recheck.has_value());  // an ack is an event
  EXPECT_TRUE(trigger.Poll(kT0 + milliseconds(1), 3).request);
}

TEST(CheckpointTriggerTest, ARequestQemuIgnoredIsRepeatedAfterTheRetryOnly) {
  CheckpointTrigger trigger = Ready();
  trigger.OnOutputHeld();
  ASSERT_TRUE(trigger.Poll(kT0, 0).request);
  CheckpointTrigger::Decision waiting = trigger.Poll(kT0 + milliseconds(10), 0);
  EXPECT_FALSE(waiting.request);
  ASSERT_TRUE(waiting.recheck.has_value());
  EXPECT_EQ(*waiting.recheck, kT0 + milliseconds(25));
  EXPECT_FALSE(trigger.Poll(kT0 + milliseconds(24), 0).request);
  EXPECT_TRUE(trigger.Poll(kT0 + milliseconds(25), 0).request);
  EXPECT_EQ(trigger.requests(), 2u);
}

// A busy guest (output every 100 µs) against a simulated QEMU: a request starts a checkpoint
// 1 ms later, a checkpoint pauses 2 ms, the periodic timer (50 ms, re-armed by every
// checkpoint start, as colo_checkpoint_notify does) starts the others.
struct Simulation {
  std::vector<TimePoint> requests;
  std::vector<TimePoint> starts;
  TimePoint last_output_sealed_late;  // latest time output waited > 10 ms for a checkpoint
};

Simulation SimulateBusyGuest(CheckpointTrigger& trigger, milliseconds duration, bool trigger_on) {
  Simulation sim;
  std::optional<TimePoint> requested_start, finish;
  TimePoint next_periodic = kT0 + milliseconds(50);
  std::optional<TimePoint> oldest_unsealed;
  for (TimePoint now = kT0; now < kT0 + duration; now += microseconds(100)) {
    if (finish && now >= *finish) {
      trigger.OnCheckpointFinished();
      finish.reset();
    }
    bool start = !finish && ((requested_start && now >= *requested_start) || now >= next_periodic);
    if (start) {
      trigger.OnCheckpointStarted(now);
      trigger.OnSealing();
      if (oldest_unsealed && now - *oldest_unsealed > milliseconds(10)) sim.last_output_sealed_late = now;
      oldest_unsealed.reset();
      sim.starts.push_back(now);
      requested_start.reset();
      next_periodic = now + milliseconds(50);
      finish = now + milliseconds(2);
    }
    trigger.OnOutputHeld();
    if (!oldest_unsealed) oldest_unsealed = now;
    CheckpointTrigger::Decision decision = trigger.Poll(now, 0);
    if (decision.request) {
      sim.requests.push_back(now);
      if (trigger_on) requested_start = now + milliseconds(1);
    }
  }
  return sim;
}

TEST(CheckpointTriggerTest, NeverMoreThanOneRequestPerSpacingWindow) {
  CheckpointTrigger trigger = Ready();
  Simulation sim = SimulateBusyGuest(trigger, milliseconds(2000), /*trigger_on=*/true);
  ASSERT_GT(sim.requests.size(), 100u) << "a busy guest must trigger checkpoints";
  for (size_t i = 1; i < sim.requests.size(); ++i) {
    ASSERT_GE(sim.requests[i] - sim.requests[i - 1], milliseconds(5)) << "requests " << i - 1 << " and " << i;
  }
  for (size_t i = 1; i < sim.starts.size(); ++i) ASSERT_GE(sim.starts[i] - sim.starts[i - 1], milliseconds(5));
  // Bounded rate: at most 1000 / 5 per second.
  EXPECT_LE(sim.starts.size(), 2000u / 5 + 1);
  EXPECT_EQ(sim.last_output_sealed_late, TimePoint()) << "held output waited more than 10 ms for a checkpoint";
}

TEST(CheckpointTriggerTest, NegativeControlWithoutRequestsOutputWaitsForThePeriodicOnes) {
  // The same oracle as above fails when the simulated QEMU ignores the requests: output then
  // waits up to an interval, so the latency check above can tell.
  CheckpointTrigger trigger = Ready();
  Simulation sim = SimulateBusyGuest(trigger, milliseconds(2000), /*trigger_on=*/false);
  EXPECT_NE(sim.last_output_sealed_late, TimePoint());
  EXPECT_LE(sim.starts.size(), 2000u / 50 + 1);
}

}  // namespace
}  // namespace understudy::primary
