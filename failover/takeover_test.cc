// ContendForOwnership resolves an unknown outcome by reading the record: a swap that etcd
// applied but whose answer was lost (a timeout, a leader change) is a win on the retry, not a
// "lost, fence yourself" — the hole that left both sides fenced and the VM down for good.
#include "failover/takeover.h"

#include <gtest/gtest.h>

namespace understudy::failover {
namespace {

// A linearizable record whose next swaps can be made to apply and then time out.
class ModelArbiter : public Arbiter {
 public:
  Result<OwnershipRecord> Read(Deadline) override {
    if (unreachable) return Status::DeadlineExceeded("model etcd down");
    return record;
  }
  Result<bool> CompareAndSwap(uint64_t expected_revision, const std::string& owner, const std::string& mode,
                              Deadline) override {
    if (unreachable) return Status::DeadlineExceeded("model etcd down");
    bool applies = record.revision == expected_revision;
    if (applies) record = {owner, mode, record.revision + 1};
    if (lose_next_answers > 0) {
      --lose_next_answers;
      return Status::DeadlineExceeded("model etcd: the answer was lost");
    }
    return applies;
  }
  std::string Describe() const override { return "model"; }

  OwnershipRecord record{"primary-host", "protected", 7};
  int lose_next_answers = 0;
  bool unreachable = false;
};

TEST(TakeoverTest, ASwapAppliedButUnansweredIsWonOnTheRetry) {
  ModelArbiter arbiter;
  arbiter.lose_next_answers = 1;
  // The first try already reads the record after the lost answer: it is ours.
  EXPECT_EQ(ContendForOwnership(arbiter, Role::kSecondary, "standby-host", 7, Deadline::AfterMillis(100)),
            PairEvent::kRecordWon);
  // A retry from the same revision "loses" to our own swap, and must still count as won.
  EXPECT_EQ(ContendForOwnership(arbiter, Role::kSecondary, "standby-host", 7, Deadline::AfterMillis(100)),
            PairEvent::kRecordWon);
  EXPECT_EQ(arbiter.record.owner, "standby-host");
  EXPECT_EQ(arbiter.record.mode, "promoted");
}

TEST(TakeoverTest, ARecordThePeerTookIsLostAndAnUnreachableArbiterDecidesNothing) {
  ModelArbiter arbiter;
  arbiter.record = {"primary-host", "unprotected", 8};  // the primary went on alone first
  EXPECT_EQ(ContendForOwnership(arbiter, Role::kSecondary, "standby-host", 7, Deadline::AfterMillis(100)),
            PairEvent::kRecordLost);
  // Our name in another mode is not a win either (a primary reading "promoted" by itself).
  arbiter.record = {"standby-host", "promoted", 9};
  EXPECT_EQ(ContendForOwnership(arbiter, Role::kPrimary, "standby-host", 7, Deadline::AfterMillis(100)),
            PairEvent::kRecordLost);
  arbiter.unreachable = true;
  EXPECT_EQ(ContendForOwnership(arbiter, Role::kSecondary, "standby-host", 9, Deadline::AfterMillis(100)),
            PairEvent::kArbiterUnreachable);
}

}  // namespace
}  // namespace understudy::failover
