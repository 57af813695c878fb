// The guests' loop knobs derived per accelerator.
#include "tests/harness/guest_pace.h"

#include <gtest/gtest.h>

namespace understudy::testing {
namespace {

TEST(GuestPaceTest, KvmKeepsTheKnobsTheTestsWereTunedWith) {
  // The e2e tests ran `pages=64 every=500` and the disk guest at `delay=20000` under KVM.
  EXPECT_EQ(CounterEveryFor("kvm", 64, kDefaultCounterLinesPerSecond), 500u);
  EXPECT_NEAR(DiskGuestDelayFor("kvm", kDefaultDiskRecordsPerSecond), 20000.0, 200.0);
}

TEST(GuestPaceTest, TcgGetsTheSameConsoleRateFromMorePasses) {
  for (uint32_t pages : {1u, 64u, 300u, 1024u, 4096u, 12000u}) {
    SCOPED_TRACE(pages);
    uint32_t kvm = CounterEveryFor("kvm", pages, 20);
    uint32_t tcg = CounterEveryFor("tcg", pages, 20);
    EXPECT_GT(tcg, kvm);
    // The derived knob gives the asked-for rate under the model.
    EXPECT_NEAR(CounterPassesPerSecond("tcg", pages) / tcg, 20.0, 1.0);
  }
  // The measurement the TCG note reports: every=20000 at 64 pages and every=20 at 4096 pages
  // gave ~20 lines/s under COLO, where the guest runs a few times slower than free-running.
  EXPECT_GT(CounterEveryFor("tcg", 64, 20), 20000u);
  EXPECT_LE(CounterEveryFor("tcg", 64, 20), 5 * 20000u);
  EXPECT_GT(CounterEveryFor("tcg", 4096, 20), 20u);
  EXPECT_LE(CounterEveryFor("tcg", 4096, 20), 5 * 20u);
}

TEST(GuestPaceTest, MorePagesPerPassMeanFewerPasses) {
  for (const char* accelerator : {"kvm", "tcg"}) {
    double previous = CounterPassesPerSecond(accelerator, 1);
    for (uint32_t pages = 2; pages <= 20000; pages = pages * 3 / 2 + 1) {
      double now = CounterPassesPerSecond(accelerator, pages);
      EXPECT_LT(now, previous) << accelerator << " at " << pages << " pages";
      previous = now;
    }
  }
}

TEST(GuestPaceTest, KnobsStayInRange) {
  EXPECT_EQ(CounterEveryFor("kvm", 15000, 1000), 1u);  // slower than asked: print every pass
  EXPECT_EQ(DiskGuestDelayFor("kvm", 100), 0u);        // faster than KVM's I/O allows: no spin
  EXPECT_GT(DiskGuestDelayFor("tcg", kDefaultDiskRecordsPerSecond), 1000000u);
}

}  // namespace
}  // namespace understudy::testing
