// A real-time thread that waits for a Mutex held by an ordinary thread is not held up by a
// third thread of middle priority: the holder inherits the waiter's priority (common/mutex.h).
// The negative control runs the same schedule with std::mutex, which inherits nothing, and
// shows the oracle can fail: there the waiter waits as long as the middle thread runs.
//
// All three threads share one CPU, so the schedule is the kernel's to decide, deterministically.
// Needs CAP_SYS_NICE (real-time policies): the target runs unsandboxed, as root in CI.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"

namespace understudy {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kSharedCpu = 0;
constexpr auto kHolderWork = 50ms;    // the ordinary holder's work under the lock
constexpr auto kMiddleSpin = 400ms;   // the middle-priority thread's busy loop

// Moves the calling thread to `cpu` with `policy` at `priority`; an empty string or why not.
std::string Become(int cpu, int policy, int priority) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(cpu, &cpus);
  if (int error = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus)) return std::strerror(error);
  sched_param param{};
  param.sched_priority = priority;
  if (int error = pthread_setschedparam(pthread_self(), policy, &param)) return std::strerror(error);
  return "";
}

void SpinFor(Clock::duration how_long) {
  const auto until = Clock::now() + how_long;
  while (Clock::now() < until) {
  }
}

// Runs the schedule with `lock` / `unlock` on one lock and returns how long the real-time
// thread waited for it.
template <typename Lock, typename Unlock>
Result<Clock::duration> RealTimeWaitBehindAnOrdinaryHolder(Lock lock, Unlock unlock) {
  std::atomic<bool> held{false}, waiting{false};
  std::string failure;
  std::mutex failure_mutex;
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> guard(failure_mutex);
    if (failure.empty()) failure = why;
  };
  Clock::duration waited{};
  std::thread holder([&] {
    if (std::string why = Become(kSharedCpu, SCHED_OTHER, 0); !why.empty()) fail("holder: " + why);
    lock();
    held.store(true);
    SpinFor(kHolderWork);  // needs the CPU to get to the unlock
    unlock();
  });
  while (!held.load()) std::this_thread::yield();
  std::thread waiter([&] {
    if (std::string why = Become(kSharedCpu, SCHED_RR, 10); !why.empty()) fail("waiter: " + why);
    waiting.store(true);
    const auto started = Clock::now();
    lock();
    waited = Clock::now() - started;
    unlock();
  });
  while (!waiting.load()) std::this_thread::yield();
  std::thread middle([&] {
    if (std::string why = Become(kSharedCpu, SCHED_RR, 5); !why.empty()) fail("middle: " + why);
    SpinFor(kMiddleSpin);
  });
  holder.join();
  waiter.join();
  middle.join();
  if (!failure.empty()) return Status::FailedPrecondition(failure);
  return waited;
}

class PriorityInheritanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(std::thread::hardware_concurrency(), 2u) << "the test thread needs a CPU other than the shared one";
    ASSERT_EQ(Become(1, SCHED_OTHER, 0), "");  // this thread stays off the shared CPU
  }
};

int64_t Millis(Clock::duration duration) { return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count(); }

TEST_F(PriorityInheritanceTest, ARealTimeWaiterIsNotHeldUpByAMiddlePriorityThread) {
  Mutex mu;
  Result<Clock::duration> waited = RealTimeWaitBehindAnOrdinaryHolder([&]() NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); },
                                                                      [&]() NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); });
  ASSERT_TRUE(waited.ok()) << waited.status() << " (real-time policies need CAP_SYS_NICE: run unsandboxed)";
  std::printf("Mutex: the real-time waiter waited %lld ms (holder's work %lld ms)\n",
              static_cast<long long>(Millis(*waited)), static_cast<long long>(Millis(kHolderWork)));
  EXPECT_LT(Millis(*waited), Millis(kMiddleSpin) / 2) << "the holder did not inherit the waiter's priority";
}

TEST_F(PriorityInheritanceTest, NegativeControlAPlainMutexKeepsTheWaiterWaitingBehindTheMiddleThread) {
  std::mutex plain;
  Result<Clock::duration> waited =
      RealTimeWaitBehindAnOrdinaryHolder([&] { plain.lock(); }, [&] { plain.unlock(); });
  ASSERT_TRUE(waited.ok()) << waited.status() << " (real-time policies need CAP_SYS_NICE: run unsandboxed)";
  std::printf("std::mutex: the real-time waiter waited %lld ms\n", static_cast<long long>(Millis(*waited)));
  EXPECT_GT(Millis(*waited), Millis(kMiddleSpin) / 2) << "the oracle cannot tell inheritance from its absence";
}

}  // namespace
}  // namespace understudy
