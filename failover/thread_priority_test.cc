// Who runs at the heartbeats' priority (failover/heartbeat_priority.h): the controller driver
// raises its own thread's when it starts (ControllerDriverOptions::heartbeat_priority), and the
// StallForgivingClock it reads is side-effect free — reading it never changes the reader.
//
// Raising a priority needs CAP_SYS_NICE, which Bazel's sandbox drops: this test runs
// unsandboxed (BUILD: no-sandbox), and says so and skips where the process still cannot.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "failover/controller_driver.h"
#include "failover/heartbeat_priority.h"
#include "failover/stall_forgiving_clock.h"

namespace understudy::failover {
namespace {

using namespace std::chrono_literals;

int ThisThreadsNice() { return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())); }

// The nice value of a fresh thread after `work` ran on it.
int NiceAfter(const std::function<void()>& work) {
  int nice = 0;
  std::thread([&] {
    work();
    nice = ThisThreadsNice();
  }).join();
  return nice;
}

// Skips (visibly) unless this process can raise a thread's priority; otherwise no oracle below
// could tell a raised thread from an untouched one.
#define REQUIRE_RAISABLE_PRIORITY()                                                                 \
  if (NiceAfter([] { RunAtHeartbeatPriority(); }) != kHeartbeatNice) {                            \
    GTEST_SKIP() << "this process may not raise a thread's priority (no CAP_SYS_NICE): not tested"; \
  }

// An in-memory record: every swap at the current revision wins. Called from the driver's
// arbiter thread only.
class InMemoryArbiter : public Arbiter {
 public:
  Result<OwnershipRecord> Read(Deadline) override { return record_; }
  Result<bool> CompareAndSwap(uint64_t expected, const std::string& owner, const std::string& mode, Deadline) override {
    if (expected != record_.revision) return false;
    record_ = {owner, mode, record_.revision + 1};
    return true;
  }
  std::string Describe() const override { return "in memory"; }

 private:
  OwnershipRecord record_;
};

// Real-time as well, and only the raised thread: a thread it starts is ordinary again
// (SCHED_RESET_ON_FORK), so a session started on the driver's thread never runs real-time.
TEST(ThreadPriorityTest, TheHeartbeatPriorityIsRealtimeForTheRaisedThreadOnly) {
  REQUIRE_RAISABLE_PRIORITY();
  bool raised_runs_realtime = false, child_runs_realtime = true;
  int child_nice = kHeartbeatNice;
  std::thread([&] {
    RunAtHeartbeatPriority();
    raised_runs_realtime = RunsRealtime();
    std::thread([&] {
      child_runs_realtime = RunsRealtime();
      child_nice = ThisThreadsNice();
    }).join();
  }).join();
  EXPECT_TRUE(raised_runs_realtime) << "SCHED_RR was refused although the nice value could be lowered";
  EXPECT_FALSE(child_runs_realtime) << "a thread started by a heartbeat thread inherited real-time scheduling";
  EXPECT_EQ(child_nice, 0) << "a thread started by a heartbeat thread inherited its nice value";
  // Negative control: an ordinary thread is not real-time.
  bool ordinary_runs_realtime = true;
  std::thread([&] { ordinary_runs_realtime = RunsRealtime(); }).join();
  EXPECT_FALSE(ordinary_runs_realtime);
}

// Remembers the nice value of the thread that carried the last action (the driver's).
class NiceRecordingHandler : public ActionHandler {
 public:
  void Carry(const Action&) override {
    nice_.store(ThisThreadsNice());
    carried_.store(true);
  }
  std::atomic<bool> carried_{false};
  std::atomic<int> nice_{0};
};

PairController Primary() {
  PairControllerOptions options;
  options.role = Role::kPrimary;
  options.me = "a";
  return *PairController::Create(options);
}

// The driver's thread nice value with `heartbeat_priority` as given.
int DriverThreadNice(bool heartbeat_priority) {
  InMemoryArbiter arbiter;
  NiceRecordingHandler handler;
  ControllerDriverOptions options;
  options.heartbeat_priority = heartbeat_priority;
  auto driver = ControllerDriver::Start(Primary(), arbiter, handler, options);
  EXPECT_TRUE(driver.ok()) << driver.status();
  if (!driver.ok()) return 1000;
  // Once syncing, a hello is carried out as kPair, on the driver thread.
  EXPECT_EQ((*driver)->WaitFor([](ControllerState s) { return s == ControllerState::kSyncing; }, Deadline::AfterMillis(3000)),
            ControllerState::kSyncing);
  Event hello = Event::Of(EventKind::kHello, 0);
  hello.peer = "b";
  hello.peer_incarnation = 1;
  (*driver)->Post(hello);
  Deadline deadline = Deadline::AfterMillis(3000);
  while (!handler.carried_.load() && !deadline.Expired()) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(handler.carried_.load()) << "the driver carried no action";
  return handler.nice_.load();
}

TEST(ThreadPriorityTest, TheDriverRaisesItsOwnThreadWhenAsked) {
  REQUIRE_RAISABLE_PRIORITY();
  EXPECT_EQ(DriverThreadNice(/*heartbeat_priority=*/true), kHeartbeatNice);
  // Negative control: without the option the driver thread keeps the process's priority.
  EXPECT_EQ(DriverThreadNice(/*heartbeat_priority=*/false), NiceAfter([] {}));
}

TEST(ThreadPriorityTest, ReadingTheStallForgivingClockLeavesTheReaderAlone) {
  REQUIRE_RAISABLE_PRIORITY();
  const int untouched = NiceAfter([] {});
  StallForgivingClock clock(kMaxClockStepMs);
  EXPECT_EQ(NiceAfter([&] { (void)clock.Now(); }), untouched);
  // Negative control: a reader that raised itself, as the clock's Now() used to, is caught.
  EXPECT_NE(NiceAfter([&] {
              RunAtHeartbeatPriority();
              (void)clock.Now();
            }),
            untouched);
}

}  // namespace
}  // namespace understudy::failover
