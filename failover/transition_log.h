// TransitionLog: the recent state changes of an agent, with wall-clock times, for the control
// API. Drills and operators read it to see what happened when — detection, takeover,
// promotion — without scraping logs. Wall-clock (not steady) time, because readers in other
// processes compare it with their own clocks.
//
// Thread safety: all methods may be called from any thread.
#ifndef UNDERSTUDY_FAILOVER_TRANSITION_LOG_H_
#define UNDERSTUDY_FAILOVER_TRANSITION_LOG_H_

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>

#include "common/mutex.h"

namespace understudy::failover {

class TransitionLog {
 public:
  // Records from → to, and why (an event name or a sentence).
  void Record(const std::string& from, const std::string& to, const std::string& why);
  // [{"at_unix_ms": ..., "from": ..., "to": ..., "why": ...}, ...], oldest first.
  nlohmann::json ToJson() const;
  // This log's entries and `later` (another agent's ToJson(): the one that protects the VM
  // for this agent now) as one history, oldest first.
  nlohmann::json MergedWith(const nlohmann::json& later) const;

 private:
  static constexpr size_t kKept = 64;
  struct Entry {
    int64_t at_unix_ms;
    std::string from, to, why;
  };
  mutable Mutex mutex_;
  std::deque<Entry> entries_ GUARDED_BY(mutex_);
};

// Milliseconds since the Unix epoch, now.
int64_t UnixMillisNow();

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_TRANSITION_LOG_H_
