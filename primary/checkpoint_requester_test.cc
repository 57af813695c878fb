#include "primary/checkpoint_requester.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace understudy::primary {
namespace {

using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

struct Fake {
  std::atomic<int> requests{0};
  std::atomic<uint64_t> in_flight{0};
  std::atomic<bool> protecting{true};
  CheckpointRequesterHooks Hooks() {
    return {[this] {
              ++requests;
              return Status::Ok();
            },
            [this]() -> std::optional<uint64_t> {
              if (!protecting.load()) return std::nullopt;
              return in_flight.load();
            }};
  }
};

TEST(CheckpointRequesterTest, HeldOutputMakesTheThreadRequestOnce) {
  Fake fake;
  CheckpointRequester requester(CheckpointTriggerOptions{}, fake.Hooks());
  requester.Start();
  requester.CheckpointFinished();  // the precopy
  requester.OutputHeld();
  requester.OutputHeld();
  ASSERT_TRUE(WaitFor([&] { return fake.requests.load() == 1; }, 2000ms));
  std::this_thread::sleep_for(10ms);  // less than the retry: no second request
  EXPECT_EQ(fake.requests.load(), 1);
  EXPECT_EQ(requester.requests(), 1u);
  requester.Stop();
}

TEST(CheckpointRequesterTest, AnAckOpensAFullWindow) {
  Fake fake;
  fake.in_flight = 4;
  CheckpointRequester requester(CheckpointTriggerOptions{}, fake.Hooks());
  requester.Start();
  requester.CheckpointFinished();
  requester.OutputHeld();
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(fake.requests.load(), 0) << "requested with the in-flight window full";
  fake.in_flight = 3;
  requester.Acked();
  EXPECT_TRUE(WaitFor([&] { return fake.requests.load() == 1; }, 2000ms));
}

TEST(CheckpointRequesterTest, NothingIsRequestedWhenOutputIsNotHeld) {
  Fake fake;
  fake.protecting = false;  // unprotected: output goes out at once
  CheckpointRequester requester(CheckpointTriggerOptions{}, fake.Hooks());
  requester.Start();
  requester.CheckpointFinished();
  requester.OutputHeld();
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(fake.requests.load(), 0);
  requester.Stop();
  requester.Stop();  // idempotent
}

}  // namespace
}  // namespace understudy::primary
