// The simulator as a test: >= 20,000 random schedules against the PairController with zero
// invariant violations, and the negative controls that show the oracle can fail.
//
// SIM_SEED=<n> in the environment fixes the base seed (each run prints the one it used); a
// failing schedule is shrunk and printed with the command that replays it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "failover/sim/simulator.h"

namespace understudy::failover::sim {
namespace {

constexpr uint64_t kSchedules = 20000;

uint64_t BaseSeed() {
  if (const char* fixed = std::getenv("SIM_SEED")) return std::strtoull(fixed, nullptr, 10);
  return static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007ull;
}

struct Found {
  bool found = false;
  Schedule shrunk;
  Outcome outcome;
  uint64_t tried = 0;
};

// Runs schedules from `base` until one fails (at most `limit`); shrinks it.
Found FirstFailure(uint64_t base, uint64_t limit, const SimOptions& options) {
  Found found;
  for (uint64_t i = 0; i < limit; ++i) {
    ++found.tried;
    Schedule schedule = GenerateSchedule(base + i, options);
    Outcome outcome = RunSchedule(schedule, options);
    if (!outcome.ok) {
      found.found = true;
      found.shrunk = Shrink(schedule, options);
      found.outcome = RunSchedule(found.shrunk, options);
      return found;
    }
  }
  return found;
}

TEST(Simulator, RandomSchedulesKeepEveryInvariant) {
  const uint64_t base = BaseSeed();
  std::printf("seed=%llu schedules=%llu\n", static_cast<unsigned long long>(base),
              static_cast<unsigned long long>(kSchedules));
  auto started = std::chrono::steady_clock::now();
  SimOptions options;
  uint64_t steps = 0;
  uint64_t failures = 0;
  Outcome::Coverage coverage;
  for (uint64_t i = 0; i < kSchedules; ++i) {
    Schedule schedule = GenerateSchedule(base + i, options);
    Outcome outcome = RunSchedule(schedule, options);
    steps += outcome.steps;
    coverage += outcome.coverage;
    if (!outcome.ok) {
      ++failures;
      Schedule shrunk = Shrink(schedule, options);
      Outcome again = RunSchedule(shrunk, options);
      ADD_FAILURE() << outcome.invariant << " in schedule seed " << base + i << ": " << outcome.detail << "\nshrunk: "
                    << DescribeSchedule(shrunk) << "\n=> " << again.invariant << ": " << again.detail
                    << "\nreplay: bazel run //failover/sim -- --seed=" << base + i << " --schedules=1 --trace";
      if (failures >= 3) break;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%llu schedules, %llu steps, %llu invariant violations, %.1f s\n",
              static_cast<unsigned long long>(kSchedules), static_cast<unsigned long long>(steps),
              static_cast<unsigned long long>(failures), seconds);
  std::printf("exercised: %s\n", DescribeCoverage(coverage).c_str());
  EXPECT_EQ(failures, 0u);
  // The schedules must reach the paths that matter, or zero violations means little.
  EXPECT_GT(coverage.promotions, kSchedules / 50);
  EXPECT_GT(coverage.went_unprotected, kSchedules / 50);
  EXPECT_GT(coverage.unknown_outcomes, kSchedules / 50);
  EXPECT_GT(coverage.clean_stops, kSchedules / 50);
}

// The same seed gives the same run, step for step (what makes --seed a replay).
TEST(Simulator, RunsAreDeterministic) {
  SimOptions options;
  options.trace = true;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Schedule schedule = GenerateSchedule(seed, options);
    Outcome first = RunSchedule(schedule, options);
    Outcome second = RunSchedule(GenerateSchedule(seed, options), options);
    ASSERT_EQ(first.trace, second.trace) << "seed " << seed;
    ASSERT_FALSE(first.trace.empty());
  }
}

// Negative control: a controller that releases output before the ack is caught.
TEST(Simulator, ReleaseBeforeAckIsCaught) {
  SimOptions options;
  options.fault = TestFault::kReleaseBeforeAck;
  Found found = FirstFailure(1, 5000, options);
  ASSERT_TRUE(found.found) << "the simulator missed a controller that releases output before the ack";
  std::printf("release-before-ack caught by %s after %llu schedule(s); shrunk to %zu fault(s), %llu steps: %s\n%s\n",
              found.outcome.invariant.c_str(), static_cast<unsigned long long>(found.tried), found.shrunk.faults.size(),
              static_cast<unsigned long long>(found.outcome.steps), found.outcome.detail.c_str(),
              DescribeSchedule(found.shrunk).c_str());
  EXPECT_TRUE(found.outcome.invariant == "I1" || found.outcome.invariant == "I2") << found.outcome.invariant;
}

// Negative control: without the mode check a secondary promotes over its primary's
// `unprotected` record; random schedules find it.
TEST(Simulator, SkippedModeCheckIsCaught) {
  SimOptions options;
  options.fault = TestFault::kSkipModeCheck;
  Found found = FirstFailure(1, 20000, options);
  ASSERT_TRUE(found.found) << "the simulator missed a controller that skips the mode check";
  std::printf("skip-mode-check caught by %s after %llu schedule(s); shrunk to %zu fault(s), %llu steps: %s\n%s\n",
              found.outcome.invariant.c_str(), static_cast<unsigned long long>(found.tried), found.shrunk.faults.size(),
              static_cast<unsigned long long>(found.outcome.steps), found.outcome.detail.c_str(),
              DescribeSchedule(found.shrunk).c_str());
  EXPECT_FALSE(found.outcome.ok);
}

// Today's decisions fail random schedules too, not only the hand-written ones.
TEST(Simulator, LegacyDecisionsFailRandomSchedules) {
  SimOptions options;
  options.brain = BrainKind::kLegacy;
  Found found = FirstFailure(1, 5000, options);
  ASSERT_TRUE(found.found);
  std::printf("legacy fails %s after %llu schedule(s); shrunk to %zu fault(s): %s\n%s\n",
              found.outcome.invariant.c_str(), static_cast<unsigned long long>(found.tried), found.shrunk.faults.size(),
              found.outcome.detail.c_str(), DescribeSchedule(found.shrunk).c_str());
}

}  // namespace
}  // namespace understudy::failover::sim
