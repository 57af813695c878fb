// ArbiterProbe reports each read's outcome, keeps reading at its interval, and stops promptly.
#include "failover/arbiter_probe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "common/test_poll.h"

namespace understudy::failover {
namespace {

class SwitchableArbiter : public Arbiter {
 public:
  Result<OwnershipRecord> Read(Deadline) override {
    if (!up.load()) return Status::Broken("model arbiter: down");
    return OwnershipRecord{"a", "protected", 3};
  }
  Result<bool> CompareAndSwap(uint64_t, const std::string&, const std::string&, Deadline) override {
    ADD_FAILURE() << "a probe must never write";
    return false;
  }
  std::string Describe() const override { return "model"; }
  std::atomic<bool> up{true};
};

struct Results {
  void Add(bool reachable) {
    MutexLock lock(&mu);
    seen.push_back(reachable);
  }
  std::vector<bool> Get() {
    MutexLock lock(&mu);
    return seen;
  }
  Mutex mu;
  std::vector<bool> seen GUARDED_BY(mu);
};

bool WaitUntil(const std::function<bool()>& done) { return PollUntil(done, std::chrono::seconds(3)); }

TEST(ArbiterProbeTest, ReportsAnOutageAndItsEnd) {
  SwitchableArbiter arbiter;
  Results results;
  ArbiterProbe probe(arbiter, std::chrono::milliseconds(20), [&](bool reachable) { results.Add(reachable); });
  ASSERT_TRUE(WaitUntil([&]() -> bool { return !results.Get().empty(); }));
  EXPECT_TRUE(results.Get().front());
  arbiter.up.store(false);
  // Get() returns a copy: take the bool out before the copy dies (vector<bool>'s back() is a
  // proxy into it).
  auto last = [&]() -> bool { return results.Get().back(); };
  ASSERT_TRUE(WaitUntil([&]() -> bool { return !last(); })) << "the outage was not reported";
  arbiter.up.store(true);
  ASSERT_TRUE(WaitUntil(last)) << "the end of the outage was not reported";
}

TEST(ArbiterProbeTest, StopsWithoutWaitingForItsInterval) {
  SwitchableArbiter arbiter;
  Results results;
  auto started = std::chrono::steady_clock::now();
  {
    ArbiterProbe probe(arbiter, std::chrono::hours(1), [&](bool reachable) { results.Add(reachable); });
    ASSERT_TRUE(WaitUntil([&]() -> bool { return !results.Get().empty(); }));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

}  // namespace
}  // namespace understudy::failover
