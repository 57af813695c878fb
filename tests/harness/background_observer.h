// BackgroundObserver: the outside world's view of a protected VM during a test — a thread
// that follows the console across the given agents (ConsoleFollower) and feeds every line
// to the continuity oracle (CounterTranscript), until stopped.
#ifndef UNDERSTUDY_TESTS_HARNESS_BACKGROUND_OBSERVER_H_
#define UNDERSTUDY_TESTS_HARNESS_BACKGROUND_OBSERVER_H_

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/counter_transcript.h"

namespace understudy::testing {

class BackgroundObserver {
 public:
  // `agent_dirs`: runtime directories whose console.sock the follower may read.
  explicit BackgroundObserver(std::vector<std::string> agent_dirs);
  ~BackgroundObserver() { Stop(); }

  void Stop();
  uint64_t last_number() const;
  uint64_t lines_observed() const;
  // Empty while every line was the previous one + 1.
  std::optional<std::string> violation() const;

 private:
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  CounterTranscript transcript_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_BACKGROUND_OBSERVER_H_
