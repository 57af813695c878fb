// StallForgivingClock: the milliseconds the secondary's pair controller sees (the
// ControllerDriver's `clock_ms`), without the time this host spent stalled.
//
// The controller declares the primary gone after a silence of its budget (150 ms by default).
// On a loaded host the driver thread, and the heartbeat thread that would have reported the
// peer, can both be off the CPU for longer than that; on their return the silence is this
// host's, not the peer's. Like PeerMonitor's ForgiveLocalStall, this clock counts at most
// `max_step` between two consecutive readings: the driver reads it at least every tick (10 ms)
// while it runs, so only a stall is shortened. Detection is then late by the stall, never
// early: delaying a takeover is always safe (the arbiter decides who owns the VM).
//
// Thread safety: not thread-safe; the driver thread alone reads it.
#ifndef UNDERSTUDY_SECONDARY_STALL_FORGIVING_CLOCK_H_
#define UNDERSTUDY_SECONDARY_STALL_FORGIVING_CLOCK_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

namespace understudy::secondary {

class StallForgivingClock {
 public:
  // `real`: a monotonic clock in milliseconds (default: steady_clock).
  explicit StallForgivingClock(std::chrono::milliseconds max_step, std::function<int64_t()> real = SteadyMillis)
      : max_step_(max_step.count()), real_(std::move(real)) {}

  int64_t Now() {
    const int64_t real = real_();
    if (!started_) {
      started_ = true;
      now_ = real;
    } else {
      now_ += std::clamp<int64_t>(real - last_real_, 0, max_step_);
    }
    last_real_ = real;
    return now_;
  }

 private:
  static int64_t SteadyMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  const int64_t max_step_;
  const std::function<int64_t()> real_;
  bool started_ = false;
  int64_t last_real_ = 0;
  int64_t now_ = 0;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_STALL_FORGIVING_CLOCK_H_
