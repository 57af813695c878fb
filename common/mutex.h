// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with clang
// thread-safety annotations (common/thread_annotations.h), so fields can say GUARDED_BY(mu_)
// and `--config=clang-tsa` checks every access. libstdc++'s own types are not annotated.
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

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace understudy {

class CondVar;

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

  // Tells the analysis the lock is held where it cannot see it (e.g. a callback invoked under
  // the lock). Does not check at run time: std::mutex cannot say who holds it.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
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

// A condition variable used with a Mutex. Every wait may also wake spuriously: re-check the
// condition in a loop.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, waits for a signal, takes `mu` again. REQUIRES: `mu` held.
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cond_.wait(lock);
    lock.release();  // Still held: ownership goes back to the caller's MutexLock.
  }

  // As Wait, but returns false once `deadline` has passed without a signal.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cond_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }

  // As Wait, but returns false once `timeout` has passed without a signal.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mu, const std::chrono::duration<Rep, Period>& timeout) REQUIRES(mu) {
    return WaitUntil(mu, std::chrono::steady_clock::now() + timeout);
  }

  void Signal() { cond_.notify_one(); }
  void SignalAll() { cond_.notify_all(); }

 private:
  std::condition_variable cond_;
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_MUTEX_H_
