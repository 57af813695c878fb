// StallForgivingClock: the time an agent's PairController is stepped with (the driver's
// `clock_ms`, failover/controller_driver.h): steady time with this host's own stalls taken
// out. The driver reads the clock at least every tick; a gap between two readings much
// longer than that means this process did not run (a loaded or paused host), and nothing
// could have been heard meanwhile — counting that gap as the peer's silence would make both
// agents of a stalled host declare each other gone at once. Forgiving time only ever delays a
// decision (the safe direction): releases follow acks, never the clock.
//
// Reading it has no side effect beyond its own bookkeeping and one log line: the thread that
// reads it (the driver's) raises its own priority (ControllerDriverOptions::heartbeat_priority).
// A stall longer than kLoggedStallMs is logged (at most once in 10 s): it explains a late
// verdict here, and a false one at the peer, which heard nothing from this host meanwhile.
//
// Thread safety: Now() from any thread.
#ifndef UNDERSTUDY_FAILOVER_STALL_FORGIVING_CLOCK_H_
#define UNDERSTUDY_FAILOVER_STALL_FORGIVING_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace understudy::failover {

// The step the agents use: ticks come every 10 ms, heartbeats every 20 ms; a reading 40 ms after
// the last one is already a stall of this host.
inline constexpr int64_t kMaxClockStepMs = 40;
// Stalls longer than this are logged (rate-limited): they explain a late or false verdict.
inline constexpr int64_t kLoggedStallMs = 100;

class StallForgivingClock {
 public:
  // `max_step_ms`: the most one reading may advance past the previous one. `real_ms`: the
  // underlying clock (tests pass their own; default steady_clock).
  explicit StallForgivingClock(int64_t max_step_ms, std::function<int64_t()> real_ms = nullptr)
      : max_step_ms_(max_step_ms), real_ms_(real_ms ? std::move(real_ms) : [] {
          return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
              .count();
        }) {}

  int64_t Now() EXCLUDES(mu_) {
    int64_t real = real_ms_();
    int64_t stalled = 0;
    int64_t now;
    {
      MutexLock lock(&mu_);
      if (!started_) {
        started_ = true;
        last_real_ = real;
        now_ = real;
      }
      int64_t step = real - last_real_;
      last_real_ = real;
      if (step > max_step_ms_) {
        // Said at most once in 10 s: a loaded host stalls often, and the log is for the first.
        if (step > kLoggedStallMs && real >= next_stall_log_) {
          stalled = step;
          next_stall_log_ = real + 10000;
        }
        step = max_step_ms_;
      }
      if (step > 0) now_ += step;
      now = now_;
    }
    if (stalled > 0) {
      Log("failover", "this host stalled for " + std::to_string(stalled) + " ms; only " + std::to_string(max_step_ms_) +
                          " ms of it counted as the peer's silence");
    }
    return now;
  }

 private:
  const int64_t max_step_ms_;
  const std::function<int64_t()> real_ms_;
  Mutex mu_;
  bool started_ GUARDED_BY(mu_) = false;
  int64_t last_real_ GUARDED_BY(mu_) = 0;
  int64_t now_ GUARDED_BY(mu_) = 0;
  int64_t next_stall_log_ GUARDED_BY(mu_) = 0;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_STALL_FORGIVING_CLOCK_H_
