// ControllerDriver: events from other threads reach the PairController, arbiter requests run on
// the driver's arbiter thread and come back as replies, time passes as ticks, operator
// requests get the controller's verdict. The arbiter here is an in-memory model (the real etcd
// arbiter is tested in arbiter_test.cc): it can apply a swap and then report a timeout, which a
// real etcd does only by chance.
#include "failover/controller_driver.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace understudy::failover {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

class ModelArbiter : public Arbiter {
 public:
  Result<OwnershipRecord> Read(Deadline) override {
    MutexLock lock(&mu_);
    ++reads_;
    return record_;
  }
  Result<bool> CompareAndSwap(uint64_t expected, const std::string& owner, const std::string& mode,
                              Deadline deadline) override {
    MutexLock lock(&mu_);
    if (block_swaps_) {
      while (!deadline.Expired()) released_.WaitUntil(&mu_, deadline.when());
      return Status::DeadlineExceeded("model arbiter: swap held until its deadline");
    }
    if (expected != record_.revision) return false;
    record_ = {owner, mode, ++revision_};
    if (apply_then_time_out_) return Status::DeadlineExceeded("model arbiter: applied, then the answer was lost");
    return true;
  }
  std::string Describe() const override { return "model"; }

  OwnershipRecord record() {
    MutexLock lock(&mu_);
    return record_;
  }
  int reads() {
    MutexLock lock(&mu_);
    return reads_;
  }
  void ApplyThenTimeOut(bool on) {
    MutexLock lock(&mu_);
    apply_then_time_out_ = on;
  }
  void BlockSwaps(bool on) {
    MutexLock lock(&mu_);
    block_swaps_ = on;
  }

 private:
  Mutex mu_;
  CondVar released_;
  OwnershipRecord record_ GUARDED_BY(mu_);
  uint64_t revision_ GUARDED_BY(mu_) = 100;
  int reads_ GUARDED_BY(mu_) = 0;
  bool apply_then_time_out_ GUARDED_BY(mu_) = false;
  bool block_swaps_ GUARDED_BY(mu_) = false;
};

// Records every action it is handed, and on which thread.
class RecordingHandler : public ActionHandler {
 public:
  void Carry(const Action& action) override {
    // Simulates this host stalling (the driver thread off the CPU) in the middle of a step.
    if (action.kind == ActionKind::kReleaseUpTo && stall_on_release_.exchange(0ms) > 0ms) {
      std::this_thread::sleep_for(stall_for_);
    }
    MutexLock lock(&mu_);
    actions_.push_back(action);
    threads_.push_back(std::this_thread::get_id());
  }
  void StallOnNextRelease(std::chrono::milliseconds stall) {
    stall_for_ = stall;
    stall_on_release_.store(stall);
  }
  std::vector<Action> actions() {
    MutexLock lock(&mu_);
    return actions_;
  }
  bool CarriedOn(std::thread::id forbidden) {
    MutexLock lock(&mu_);
    for (std::thread::id id : threads_) {
      if (id == forbidden) return true;
    }
    return false;
  }
  uint64_t HighestRelease() {
    MutexLock lock(&mu_);
    uint64_t highest = 0;
    for (const Action& a : actions_) {
      if (a.kind == ActionKind::kReleaseUpTo) highest = std::max(highest, a.epoch);
    }
    return highest;
  }

 private:
  std::atomic<std::chrono::milliseconds> stall_on_release_{std::chrono::milliseconds(0)};
  std::chrono::milliseconds stall_for_{0};
  Mutex mu_;
  std::vector<Action> actions_ GUARDED_BY(mu_);
  std::vector<std::thread::id> threads_ GUARDED_BY(mu_);
};

PairController Primary() {
  PairControllerOptions options;
  options.role = Role::kPrimary;
  options.me = "a";
  options.budget_ms = 150;
  options.sync_grace_ms = 300;
  return *PairController::Create(options);
}

bool Is(ControllerState want, ControllerState got) { return want == got; }

ControllerState WaitForState(ControllerDriver& driver, ControllerState want, int64_t ms = 3000) {
  return driver.WaitFor([want](ControllerState s) { return Is(want, s); }, Deadline::AfterMillis(ms));
}

Event Hello(const char* peer, uint64_t incarnation) {
  Event e = Event::Of(EventKind::kHello, 0);
  e.peer = peer;
  e.peer_incarnation = incarnation;
  return e;
}

Event Heard(Path path, uint64_t incarnation) {
  Event e = Event::Of(EventKind::kHeard, 0);
  e.path = path;
  e.peer_incarnation = incarnation;
  return e;
}

// Acks count only from the paired incarnation (7 in these tests).
Event Epoch(EventKind kind, uint64_t epoch) {
  Event e = Event::Of(kind, 0);
  e.epoch = epoch;
  e.peer_incarnation = 7;
  return e;
}

// Posts "heard" on `paths` (incarnation 7) every `period` until destroyed: a peer that talks.
class Chatter {
 public:
  Chatter(ControllerDriver& driver, std::vector<Path> paths, milliseconds period)
      : thread_([this, &driver, paths = std::move(paths), period] {
          while (!stop_.load()) {
            for (Path path : paths) driver.Post(Heard(path, 7));
            std::this_thread::sleep_for(period);
          }
        }) {}
  ~Chatter() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A primary "a" that claimed the record and is paired with "b" (incarnation 7), whose first
// checkpoint is acked: protected.
std::unique_ptr<ControllerDriver> ProtectedPrimary(ModelArbiter& arbiter, RecordingHandler& handler) {
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler);
  EXPECT_TRUE(driver.ok()) << driver.status();
  if (!driver.ok()) return nullptr;
  EXPECT_EQ(WaitForState(**driver, ControllerState::kSyncing), ControllerState::kSyncing);
  (*driver)->Post(Hello("b", 7));
  (*driver)->Post(Epoch(EventKind::kCaptured, 1));
  (*driver)->Post(Epoch(EventKind::kAcked, 1));
  EXPECT_EQ(WaitForState(**driver, ControllerState::kProtected), ControllerState::kProtected);
  return std::move(*driver);
}

TEST(ControllerDriverTest, ClaimsTheRecordThroughTheArbiterThread) {
  ModelArbiter arbiter;
  RecordingHandler handler;
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler);
  ASSERT_TRUE(driver.ok()) << driver.status();
  EXPECT_EQ(WaitForState(**driver, ControllerState::kSyncing), ControllerState::kSyncing);
  EXPECT_EQ(arbiter.record(), (OwnershipRecord{"a", "protected", 101}));
  EXPECT_FALSE(handler.CarriedOn(std::this_thread::get_id()));
}

// A swap that applied but whose answer was lost is resolved by a read: the primary sees its own
// record and goes on, instead of taking "no answer" for "lost" and refusing to run the VM.
TEST(ControllerDriverTest, ASwapThatTimedOutAfterApplyingIsResolvedByAReadNotAGuess) {
  ModelArbiter arbiter;
  arbiter.ApplyThenTimeOut(true);
  RecordingHandler handler;
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler);
  ASSERT_TRUE(driver.ok());
  EXPECT_EQ(WaitForState(**driver, ControllerState::kSyncing), ControllerState::kSyncing);
  EXPECT_GE(arbiter.reads(), 2) << "the outcome must have been read, not assumed";
  EXPECT_EQ(arbiter.record().owner, "a");
}

TEST(ControllerDriverTest, OutputIsReleasedOnlyAfterTheAckReachesTheController) {
  ModelArbiter arbiter;
  RecordingHandler handler;
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler);
  ASSERT_TRUE(driver.ok());
  ASSERT_EQ(WaitForState(**driver, ControllerState::kSyncing), ControllerState::kSyncing);
  (*driver)->Post(Hello("b", 7));
  (*driver)->Post(Epoch(EventKind::kCaptured, 1));
  (*driver)->Post(Epoch(EventKind::kCaptured, 2));
  ASSERT_EQ(WaitForState(**driver, ControllerState::kSyncing), ControllerState::kSyncing);
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(handler.HighestRelease(), 0u) << "nothing acked yet";
  (*driver)->Post(Epoch(EventKind::kAcked, 1));
  EXPECT_EQ(WaitForState(**driver, ControllerState::kProtected), ControllerState::kProtected);
  EXPECT_EQ(handler.HighestRelease(), 1u);
  EXPECT_EQ((*driver)->snapshot().released, 1u);
  EXPECT_EQ((*driver)->snapshot().peer, "b");
}

// Ticks come even while one path chatters: a silent heartbeat path is noticed although
// replication-path events arrive every few milliseconds.
TEST(ControllerDriverTest, ASilentPathIsNoticedWhileAnotherKeepsTalking) {
  ModelArbiter arbiter;
  RecordingHandler handler;
  std::unique_ptr<ControllerDriver> driver = ProtectedPrimary(arbiter, handler);
  ASSERT_NE(driver, nullptr);
  ControllerState seen;
  {
    Chatter chatter(*driver, {Path::kReplication}, milliseconds(2));
    seen = WaitForState(*driver, ControllerState::kDegraded, 2000);
  }
  EXPECT_EQ(seen, ControllerState::kDegraded);
}

TEST(ControllerDriverTest, OperatorRequestsGetTheControllersVerdict) {
  ModelArbiter arbiter;
  RecordingHandler handler;
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler);
  ASSERT_TRUE(driver.ok());
  ASSERT_EQ(WaitForState(**driver, ControllerState::kSyncing), ControllerState::kSyncing);
  Status promote = (*driver)->Request(Event::Of(EventKind::kPromoteRequested, 0), Deadline::AfterMillis(2000));
  EXPECT_EQ(promote.code(), Status::Code::kFailedPrecondition) << promote;
  Status tick = (*driver)->Request(Event::Of(EventKind::kTick, 0), Deadline::AfterMillis(2000));
  EXPECT_EQ(tick.code(), Status::Code::kInvalidArgument);
  Status stop = (*driver)->Request(Event::Of(EventKind::kStopRequested, 0), Deadline::AfterMillis(2000));
  EXPECT_TRUE(stop.ok()) << stop;
  bool stopped_vm = false;
  for (const Action& a : handler.actions()) stopped_vm |= a.kind == ActionKind::kStopVm;
  EXPECT_TRUE(stopped_vm) << "the verdict comes after the request's actions ran";
}

// After this host stalls, the heartbeats that arrived meanwhile are stepped before the tick
// that judges the silence: a stall of our own is not the peer's silence.
TEST(ControllerDriverTest, HeartbeatsQueuedDuringALocalStallCountBeforeTheNextTick) {
  ModelArbiter arbiter;
  RecordingHandler handler;
  std::unique_ptr<ControllerDriver> driver = ProtectedPrimary(arbiter, handler);
  ASSERT_NE(driver, nullptr);
  ControllerState left;
  {
    Chatter chatter(*driver, {Path::kReplication, Path::kHeartbeatA, Path::kHeartbeatB}, 5ms);
    handler.StallOnNextRelease(400ms);  // well over the 150 ms budget
    driver->Post(Epoch(EventKind::kCaptured, 2));
    driver->Post(Epoch(EventKind::kAcked, 2));
    left = driver->WaitFor([](ControllerState s) { return s != ControllerState::kProtected; },
                           Deadline::AfterMillis(1000));
  }
  EXPECT_EQ(left, ControllerState::kProtected);
  EXPECT_EQ(handler.HighestRelease(), 2u);
  for (const Action& a : handler.actions()) EXPECT_NE(a.kind, ActionKind::kGoUnprotected) << ActionName(a);
}

// Stopping the driver while the arbiter holds a request ends by that request's deadline.
TEST(ControllerDriverTest, StopsWhileTheArbiterHangs) {
  ModelArbiter arbiter;
  arbiter.BlockSwaps(true);
  RecordingHandler handler;
  ControllerDriverOptions options;
  options.arbiter_timeout = milliseconds(300);
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler, options);
  ASSERT_TRUE(driver.ok());
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ((*driver)->snapshot().state, ControllerState::kClaiming);
  auto started = std::chrono::steady_clock::now();
  driver->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(1500));
}

TEST(ControllerDriverTest, RefusesNonsenseOptions) {
  ModelArbiter arbiter;
  RecordingHandler handler;
  ControllerDriverOptions options;
  options.tick = milliseconds(0);
  EXPECT_EQ(ControllerDriver::Start(Primary(), arbiter, handler, options).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace understudy::failover
