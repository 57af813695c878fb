// Deadline: the moment a blocking operation must give up.
//
// Every call in Understudy that may block (socket reads, QMP commands, process start-up)
// takes a Deadline rather than a duration, so a sequence of calls shares one budget and a
// dead peer costs at most that budget. Based on the monotonic clock.
#ifndef UNDERSTUDY_COMMON_DEADLINE_H_
#define UNDERSTUDY_COMMON_DEADLINE_H_

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace understudy {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static Deadline After(Clock::duration budget) { return Deadline(Clock::now() + budget); }
  static Deadline AfterMillis(int64_t millis) { return After(std::chrono::milliseconds(millis)); }
  // For operations that must not wait at all.
  static Deadline Now() { return Deadline(Clock::now()); }

  bool Expired() const { return Clock::now() >= when_; }
  Clock::duration Remaining() const { return std::max(Clock::duration::zero(), when_ - Clock::now()); }

  // Remaining time in whole milliseconds, rounded up, for poll(2). Never negative.
  int PollTimeoutMillis() const {
    auto remaining = Remaining();
    auto millis = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
    return static_cast<int>(std::min<int64_t>(millis, 1 << 30));
  }

  Clock::time_point when() const { return when_; }
  // The earlier of two deadlines.
  Deadline Min(Deadline other) const { return other.when_ < when_ ? other : *this; }

 private:
  explicit Deadline(Clock::time_point when) : when_(when) {}
  Clock::time_point when_;
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_DEADLINE_H_
