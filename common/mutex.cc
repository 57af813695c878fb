#include "common/mutex.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace understudy {
namespace {

// A failure here is a programming error (an unlock by a non-owner, a destroyed lock in use)
// or an exhausted system; neither can be handled by the caller.
void Check(int result) {
  if (result != 0) std::abort();
}

}  // namespace

Mutex::Mutex() {
  pthread_mutexattr_t attributes;
  Check(pthread_mutexattr_init(&attributes));
  Check(pthread_mutexattr_setprotocol(&attributes, PTHREAD_PRIO_INHERIT));
  // Where the kernel has no PI futexes (some emulators and sandboxes) a plain mutex still
  // excludes; only the inheritance is lost.
  if (pthread_mutex_init(&mu_, &attributes) != 0) {
    Check(pthread_mutexattr_setprotocol(&attributes, PTHREAD_PRIO_NONE));
    Check(pthread_mutex_init(&mu_, &attributes));
  }
  Check(pthread_mutexattr_destroy(&attributes));
}

Mutex::~Mutex() { pthread_mutex_destroy(&mu_); }

void Mutex::Lock() { Check(pthread_mutex_lock(&mu_)); }

void Mutex::Unlock() { Check(pthread_mutex_unlock(&mu_)); }

bool Mutex::TryLock() { return pthread_mutex_trylock(&mu_) == 0; }

CondVar::CondVar() {
  pthread_condattr_t attributes;
  Check(pthread_condattr_init(&attributes));
  // std::chrono::steady_clock is CLOCK_MONOTONIC in libstdc++: deadlines convert 1:1.
  Check(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC));
  Check(pthread_cond_init(&cond_, &attributes));
  Check(pthread_condattr_destroy(&attributes));
}

CondVar::~CondVar() { pthread_cond_destroy(&cond_); }

void CondVar::Wait(Mutex* mu) { Check(pthread_cond_wait(&cond_, &mu->mu_)); }

bool CondVar::WaitUntilSteady(Mutex* mu, std::chrono::steady_clock::time_point deadline) {
  // The monotonic clock starts at boot: a deadline before it has passed already.
  const int64_t nanos = std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count());
  timespec when{};
  when.tv_sec = static_cast<time_t>(nanos / 1'000'000'000);
  when.tv_nsec = static_cast<long>(nanos % 1'000'000'000);
  const int result = pthread_cond_timedwait(&cond_, &mu->mu_, &when);
  if (result != ETIMEDOUT) Check(result);
  return result != ETIMEDOUT;
}

void CondVar::Signal() { Check(pthread_cond_signal(&cond_)); }

void CondVar::SignalAll() { Check(pthread_cond_broadcast(&cond_)); }

}  // namespace understudy
