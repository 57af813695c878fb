#include "failover/stall_forgiving_clock.h"

#include <gtest/gtest.h>

namespace understudy::failover {
namespace {

TEST(StallForgivingClockTest, OrdinaryStepsPassAndAStallCountsAsOneStep) {
  int64_t real = 1000;
  StallForgivingClock clock(/*max_step_ms=*/40, [&] { return real; });
  EXPECT_EQ(clock.Now(), 1000);
  real += 10;
  EXPECT_EQ(clock.Now(), 1010);
  real += 30;
  EXPECT_EQ(clock.Now(), 1040);
  real += 500;  // this host did not run for half a second
  EXPECT_EQ(clock.Now(), 1080) << "a local stall was counted as the peer's silence";
  real += 10;
  EXPECT_EQ(clock.Now(), 1090);
}

TEST(StallForgivingClockTest, AGenuineSilenceAccumulatesWhileTheHostRuns) {
  int64_t real = 0;
  StallForgivingClock clock(40, [&] { return real; });
  clock.Now();
  for (int i = 0; i < 30; ++i) {  // read every 10 ms: 300 ms pass, all of them count
    real += 10;
    clock.Now();
  }
  EXPECT_EQ(clock.Now(), 300);
}

TEST(StallForgivingClockTest, NeverGoesBackwards) {
  int64_t real = 100;
  StallForgivingClock clock(40, [&] { return real; });
  clock.Now();
  real = 50;
  EXPECT_EQ(clock.Now(), 100);
  real = 60;
  EXPECT_EQ(clock.Now(), 110);
}

}  // namespace
}  // namespace understudy::failover
