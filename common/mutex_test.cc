// Mutex, MutexLock and CondVar do what their std:: counterparts do: exclusion, signalled
// wake-ups, and time-outs that report themselves.
#include "common/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace understudy {
namespace {

using namespace std::chrono_literals;

class Counter {
 public:
  void Add() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    // Read, yield, write: without exclusion other threads' increments would be lost.
    const int seen = value_;
    std::this_thread::yield();
    value_ = seen + 1;
  }
  int value() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return value_;
  }

 private:
  Mutex mu_;
  int value_ GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, MutexLockExcludesOtherThreads) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&counter] {
      for (int i = 0; i < 2000; ++i) counter.Add();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.value(), 8000);
}

TEST(MutexTest, TryLockFailsWhileHeldAndSucceedsAfter) {
  Mutex mu;
  mu.Lock();
  bool taken_elsewhere = true;
  std::thread([&] {
    if (mu.TryLock()) {
      mu.Unlock();
    } else {
      taken_elsewhere = false;
    }
  }).join();
  EXPECT_FALSE(taken_elsewhere);
  mu.Unlock();
  bool taken_after = false;
  if (mu.TryLock()) {
    taken_after = true;
    mu.Unlock();
  }
  EXPECT_TRUE(taken_after);
}

// A flag another thread sets under `mu` after `delay`, signalling `cond`.
struct DelayedSignal {
  Mutex mu;
  CondVar cond;
  bool ready GUARDED_BY(mu) = false;
  std::thread signaller;
  explicit DelayedSignal(std::chrono::milliseconds delay)
      : signaller([this, delay] {
          std::this_thread::sleep_for(delay);
          MutexLock lock(&mu);
          ready = true;
          cond.SignalAll();
        }) {}
  ~DelayedSignal() { signaller.join(); }
};

TEST(CondVarTest, WaitReturnsOnceSignalledWithTheLockHeld) {
  DelayedSignal signal(20ms);
  {
    MutexLock lock(&signal.mu);
    while (!signal.ready) signal.cond.Wait(&signal.mu);
    EXPECT_TRUE(signal.ready);
  }
  // The waiter gave the lock back when its MutexLock ended (the signaller let go of it before
  // the waiter could wake): it is free now.
  bool free_again = false;
  if (signal.mu.TryLock()) {
    free_again = true;
    signal.mu.Unlock();
  }
  EXPECT_TRUE(free_again);
}

TEST(CondVarTest, WaitForTimesOutWithoutSignalAndReportsIt) {
  Mutex mu;
  CondVar cond;
  MutexLock lock(&mu);
  const auto start = std::chrono::steady_clock::now();
  bool signalled = true;
  // A spurious wake-up may return true early; loop until the time is really up.
  while (std::chrono::steady_clock::now() - start < 30ms) signalled = cond.WaitFor(&mu, 30ms);
  EXPECT_FALSE(signalled);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST(CondVarTest, WaitUntilReturnsTrueWhenSignalledBeforeTheDeadline) {
  Mutex mu;
  CondVar cond;
  bool ready = false;
  std::thread signaller([&] {
    std::this_thread::sleep_for(10ms);
    MutexLock lock(&mu);
    ready = true;
    cond.Signal();
  });
  bool signalled = false;
  {
    MutexLock lock(&mu);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!ready) signalled = cond.WaitUntil(&mu, deadline);
  }
  signaller.join();
  EXPECT_TRUE(signalled);
}

// A timeout beyond what the clock can count waits for the signal (it once overflowed into
// a deadline in the past, and every wait returned at once). The system clock's deadlines
// convert to the monotonic clock's.
TEST(CondVarTest, HugeTimeoutsAndOtherClocksWaitForTheSignal) {
  for (int clock = 0; clock < 2; ++clock) {
    DelayedSignal signal(20ms);
    int waits = 0;
    MutexLock lock(&signal.mu);
    while (!signal.ready) {
      ++waits;
      if (clock == 0) {
        signal.cond.WaitFor(&signal.mu, std::chrono::milliseconds::max());
      } else {
        signal.cond.WaitUntil(&signal.mu, std::chrono::system_clock::now() + 10s);
      }
    }
    EXPECT_LE(waits, 3) << "the wait returned at once, again and again (clock " << clock << ")";
  }
}

}  // namespace
}  // namespace understudy
