// Mutex, MutexLock and CondVar: a mutex and a condition variable with clang thread-safety
// annotations (common/thread_annotations.h), so fields can say GUARDED_BY(mu_) and
// `--config=clang-tsa` checks every access. libstdc++'s own types are not annotated.
//
// Every Mutex inherits priority (PTHREAD_PRIO_INHERIT). The agents' heartbeat and controller
// threads run real-time (failover/heartbeat_priority.h) and take locks that ordinary threads
// also take (a status page, a transition log). With a plain mutex, an ordinary holder that a
// loaded host does not schedule keeps the real-time thread waiting for as long; the heartbeat
// then sends nothing and the peer rightly calls this host dead. With inheritance the holder
// runs at the waiter's priority until it lets go. Uncontended, it costs what a plain one does.
//
// Thread safety: Mutex and CondVar are for sharing between threads; MutexLock belongs to the
// thread that made it. None of them is copyable or movable.
//
// Waiting: the analysis cannot see into lambdas, so instead of predicate waits write the loop
// out, which also makes the re-check after a spurious wake-up visible:
//
//   MutexLock lock(&mu_);
//   while (!ready_) cond_.Wait(&mu_);
#ifndef UNDERSTUDY_COMMON_MUTEX_H_
#define UNDERSTUDY_COMMON_MUTEX_H_

#include <pthread.h>

#include <chrono>
#include <type_traits>

#include "common/thread_annotations.h"

namespace understudy {

class CondVar;

class CAPABILITY("mutex") Mutex {
 public:
  Mutex();
  ~Mutex();
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE();
  void Unlock() RELEASE();
  bool TryLock() TRY_ACQUIRE(true);

  // Tells the analysis the lock is held where it cannot see it (e.g. a callback invoked under
  // the lock). Does not check at run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  pthread_mutex_t mu_;
};

// Holds `mu` from construction to destruction.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable used with a Mutex; it measures time on the monotonic clock. Every wait
// may also wake spuriously: re-check the condition in a loop. Inheritance covers taking the
// Mutex again after a wait, not the wait itself (glibc's condition variables are not
// priority-aware): a real-time thread should wait on one only for work, never behind it.
class CondVar {
 public:
  CondVar();
  ~CondVar();
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, waits for a signal, takes `mu` again. REQUIRES: `mu` held.
  void Wait(Mutex* mu) REQUIRES(mu);

  // As Wait, but returns false once `deadline` has passed without a signal.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mu) {
    if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
      return WaitUntilSteady(mu, std::chrono::time_point_cast<std::chrono::steady_clock::duration>(deadline));
    } else {
      return WaitFor(mu, deadline - Clock::now());
    }
  }

  // As Wait, but returns false once `timeout` has passed without a signal. A timeout too long
  // to represent waits as long as the clock can count.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mu, const std::chrono::duration<Rep, Period>& timeout) REQUIRES(mu) {
    using Steady = std::chrono::steady_clock;
    const auto now = Steady::now();
    const auto room = std::chrono::duration_cast<std::chrono::duration<double>>(Steady::time_point::max() - now);
    if (std::chrono::duration_cast<std::chrono::duration<double>>(timeout) >= room) {
      return WaitUntilSteady(mu, Steady::time_point::max());
    }
    return WaitUntilSteady(mu, now + std::chrono::duration_cast<Steady::duration>(timeout));
  }

  void Signal();
  void SignalAll();

 private:
  bool WaitUntilSteady(Mutex* mu, std::chrono::steady_clock::time_point deadline) REQUIRES(mu);

  pthread_cond_t cond_;
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_MUTEX_H_
