#include "common/test_poll.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace understudy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(PollUntilTest, ATrueConditionReturnsAtOnce) {
  int checks = 0;
  auto started = Clock::now();
  EXPECT_TRUE(PollUntil([&] { return ++checks > 0; }, 5s));
  EXPECT_EQ(checks, 1);
  EXPECT_LT(Clock::now() - started, 100ms);
}

TEST(PollUntilTest, WaitsForAnotherThreadToMakeItTrue) {
  std::atomic<bool> flag{false};
  std::thread setter([&] {
    std::this_thread::sleep_for(50ms);
    flag.store(true);
  });
  EXPECT_TRUE(PollUntil([&] { return flag.load(); }, 5s, 5ms));
  setter.join();
}

// Negative control: a condition that never holds is reported false, after the deadline and
// not long after it.
TEST(PollUntilTest, GivesUpAtTheDeadline) {
  int checks = 0;
  auto started = Clock::now();
  EXPECT_FALSE(PollUntil([&] { return ++checks < 0; }, 100ms, 10ms));
  auto waited = Clock::now() - started;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 1s);
  EXPECT_GE(checks, 3) << "it must keep checking, once more at the deadline too";
}

TEST(PollUntilTest, ChecksOnceMoreAtTheDeadline) {
  // True only once the whole budget has passed: the check at the deadline must see it.
  auto started = Clock::now();
  EXPECT_TRUE(PollUntil([&] { return Clock::now() - started >= 60ms; }, 60ms, 50ms));
}

}  // namespace
}  // namespace understudy
