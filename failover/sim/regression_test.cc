// One named schedule per hole of issue 15. Each must FAIL against LegacyController (today's
// decisions, ported) with the invariant named, and PASS against the PairController. Printing
// the legacy failure is the evidence the issue asks for.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "failover/sim/simulator.h"

namespace understudy::failover::sim {
namespace {

constexpr int kA = 0;
constexpr int kB = 1;

Fault F(int64_t at, FaultKind kind, int host = 0, int path = 0, int64_t value = 0) {
  return Fault{at, kind, host, path, value, 0};
}

void Partition(std::vector<Fault>& faults, int64_t from, int64_t to) {
  for (int path = 0; path < kPathCount; ++path) {
    faults.push_back(F(from, FaultKind::kCutPath, kA, path));
    faults.push_back(F(to, FaultKind::kHealPath, kA, path));
  }
}

struct Verdicts {
  Outcome legacy;
  Outcome controller;
};

// SIM_TRACE=1 in the environment prints both runs step by step.
Verdicts RunBoth(const char* name, const Schedule& schedule, SimOptions options = {}) {
  options.trace = std::getenv("SIM_TRACE") != nullptr;
  options.brain = BrainKind::kLegacy;
  Verdicts v{RunSchedule(schedule, options), {}};
  if (options.trace) std::printf("--- legacy trace\n%s", v.legacy.trace.c_str());
  options.brain = BrainKind::kPairController;
  options.no_arbiter = false;
  v.controller = RunSchedule(schedule, options);
  if (options.trace) std::printf("--- pair-controller trace\n%s", v.controller.trace.c_str());
  std::printf("[%s] %s\n  legacy: %s %s\n  pair-controller: %s %s\n", name, DescribeSchedule(schedule).c_str(),
              v.legacy.ok ? "ok" : v.legacy.invariant.c_str(), v.legacy.detail.c_str(),
              v.controller.ok ? "ok" : v.controller.invariant.c_str(), v.controller.detail.c_str());
  return v;
}

// The secondary's read at pairing times out (its LAN to etcd is slow), so today's secondary
// keeps revision 0 and, after the hosts are cut apart, adopts whatever revision it reads —
// the primary's `unprotected` one — and promotes while the primary releases output.
Schedule SplitBrainSchedule() {
  Schedule s{.seed = 101, .faults = {}};
  s.faults.push_back(F(0, FaultKind::kSlowLan, kB, 0, 2500));
  s.faults.push_back(F(300, FaultKind::kSlowLan, kB, 0, 0));
  s.faults.push_back(F(1000, FaultKind::kSlowLan, kB, 0, 300));
  Partition(s.faults, 1000, 2900);
  return s;
}

TEST(Regression, SplitBrainViaRevisionZeroAndNoModeCheck) {
  Verdicts v = RunBoth("split-brain: revision 0, mode not checked", SplitBrainSchedule());
  EXPECT_FALSE(v.legacy.ok);
  EXPECT_TRUE(v.legacy.invariant == "I1" || v.legacy.invariant == "I2") << v.legacy.invariant;
  EXPECT_TRUE(v.controller.ok) << v.controller.invariant << ": " << v.controller.detail;
}

// Same revision-0 secondary; the primary stops cleanly while every path is cut, so the
// goodbye never arrives but the record is marked `stopped`. Today's secondary swaps it to
// `promoted`.
TEST(Regression, PromotionOverStoppedRecord) {
  Schedule s{.seed = 102, .faults = {}};
  s.faults.push_back(F(0, FaultKind::kSlowLan, kB, 0, 2500));
  s.faults.push_back(F(300, FaultKind::kSlowLan, kB, 0, 0));
  Partition(s.faults, 900, 2900);
  s.faults.push_back(F(1000, FaultKind::kCleanStop, kA));
  Verdicts v = RunBoth("promotion over a stopped record", s);
  EXPECT_FALSE(v.legacy.ok);
  EXPECT_EQ(v.legacy.invariant, "I3");
  EXPECT_TRUE(v.controller.ok) << v.controller.invariant << ": " << v.controller.detail;
}

// etcd applies the primary's swap to `unprotected` and its answer is lost. Today's primary
// reads the timeout as "unreachable", retries with the old revision, gets `false` and fences
// itself (and fences on its own write while watching); the secondary sees the revision move
// and discards its standby: both fenced, VM down for good.
TEST(Regression, BothFencedAfterTimedOutSwap) {
  Schedule s{.seed = 103, .faults = {}};
  s.faults.push_back(F(1000, FaultKind::kSlowLan, kB, 0, 300));
  s.faults.push_back(F(1000, FaultKind::kEtcdLoseAnswer));
  Partition(s.faults, 1000, 2900);
  Verdicts v = RunBoth("both fenced after a timed-out swap", s);
  EXPECT_FALSE(v.legacy.ok);
  EXPECT_EQ(v.legacy.invariant, "I4");
  EXPECT_TRUE(v.controller.ok) << v.controller.invariant << ": " << v.controller.detail;
}

// The primary crashes, the secondary promotes, the restarted host asks to protect it and dies
// as soon as it is welcomed; etcd is down. Today's re-protecting primary turns `unprotected`
// before its swap, the swap fails, and it is never retried: output stays held for good.
TEST(Regression, ReprotectingShortcut) {
  Schedule s{.seed = 104, .faults = {}};
  s.faults.push_back(F(500, FaultKind::kCrash, kA));
  s.faults.push_back(F(900, FaultKind::kRestart, kA));
  s.faults.push_back(F(900, FaultKind::kCrashOnWelcome, kA));
  s.faults.push_back(F(1000, FaultKind::kEtcdDown));
  s.faults.push_back(F(2900, FaultKind::kEtcdUp));
  SimOptions options;
  options.restart_at_heal = false;
  Verdicts v = RunBoth("re-protecting shortcut", s, options);
  EXPECT_FALSE(v.legacy.ok);
  EXPECT_EQ(v.legacy.invariant, "I5");
  EXPECT_TRUE(v.controller.ok) << v.controller.invariant << ": " << v.controller.detail;
}

// etcd is down when the primary stops cleanly: today the record cannot be marked, the
// secondary treats the goodbye as nothing special and promotes once etcd returns.
TEST(Regression, GoodbyeDoesNotStopPromotionWithEtcdDown) {
  Schedule s{.seed = 105, .faults = {}};
  s.faults.push_back(F(500, FaultKind::kEtcdDown));
  s.faults.push_back(F(800, FaultKind::kCleanStop, kA));
  s.faults.push_back(F(2900, FaultKind::kEtcdUp));
  Verdicts v = RunBoth("goodbye with etcd down", s);
  EXPECT_FALSE(v.legacy.ok);
  EXPECT_EQ(v.legacy.invariant, "I3");
  EXPECT_TRUE(v.controller.ok) << v.controller.invariant << ": " << v.controller.detail;
}

// A config without an arbiter: today both sides of a partition win their own swap.
TEST(Regression, NoArbiterByDefault) {
  Schedule s{.seed = 106, .faults = {}};
  Partition(s.faults, 1000, 2500);
  SimOptions options;
  options.no_arbiter = true;
  options.brain = BrainKind::kLegacy;
  Outcome legacy = RunSchedule(s, options);
  std::printf("[no arbiter] legacy: %s %s\n", legacy.ok ? "ok" : legacy.invariant.c_str(), legacy.detail.c_str());
  EXPECT_FALSE(legacy.ok);
  EXPECT_TRUE(legacy.invariant == "I1" || legacy.invariant == "I2") << legacy.invariant;
  options.brain = BrainKind::kPairController;
  Outcome controller = RunSchedule(s, options);
  std::printf("[no arbiter] pair-controller: refused=%d %s\n", controller.refused, controller.detail.c_str());
  EXPECT_TRUE(controller.refused);
  EXPECT_NE(controller.detail.find("no arbiter configured"), std::string::npos) << controller.detail;
}

// Negative control for the mode check: the PairController with the check switched off falls
// into the split brain of the first schedule.
TEST(Regression, SkippingTheModeCheckIsCaught) {
  SimOptions options;
  options.fault = TestFault::kSkipModeCheck;
  Outcome broken = RunSchedule(SplitBrainSchedule(), options);
  std::printf("[skip-mode-check] %s after %llu steps: %s\n", broken.ok ? "ok" : broken.invariant.c_str(),
              static_cast<unsigned long long>(broken.steps), broken.detail.c_str());
  EXPECT_FALSE(broken.ok);
  EXPECT_TRUE(broken.invariant == "I1" || broken.invariant == "I2") << broken.invariant;
}

}  // namespace
}  // namespace understudy::failover::sim
