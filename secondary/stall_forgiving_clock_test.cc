#include "secondary/stall_forgiving_clock.h"

#include <gtest/gtest.h>

namespace understudy::secondary {
namespace {

TEST(StallForgivingClockTest, CountsRegularStepsInFullAndAStallOnlyUpToTheMaximumStep) {
  int64_t real = 1000;
  StallForgivingClock clock(std::chrono::milliseconds(50), [&] { return real; });
  EXPECT_EQ(clock.Now(), 1000);
  for (int i = 0; i < 20; ++i) {
    real += 10;
    clock.Now();
  }
  EXPECT_EQ(clock.Now(), 1200) << "ticks of 10 ms are real time";
  real += 400;  // this host stalled: the peer's silence in it is not the peer's
  EXPECT_EQ(clock.Now(), 1250);
  real += 10;
  EXPECT_EQ(clock.Now(), 1260);
}

TEST(StallForgivingClockTest, NeverRunsBackwards) {
  int64_t real = 500;
  StallForgivingClock clock(std::chrono::milliseconds(50), [&] { return real; });
  clock.Now();
  real -= 30;
  EXPECT_EQ(clock.Now(), 500);
  real += 40;
  EXPECT_EQ(clock.Now(), 540);
}

}  // namespace
}  // namespace understudy::secondary
