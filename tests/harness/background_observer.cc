#include "tests/harness/background_observer.h"

#include "console/console_follower.h"

namespace understudy::testing {

BackgroundObserver::BackgroundObserver(std::vector<std::string> agent_dirs) {
  std::vector<std::string> sockets;
  for (const std::string& dir : agent_dirs) sockets.push_back(dir + "/console.sock");
  thread_ = std::thread([this, sockets] {
    console::ConsoleFollower follower(sockets);
    while (!stop_.load()) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(50));
      if (!line.ok()) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      transcript_.Observe(*line);
    }
  });
}

void BackgroundObserver::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

uint64_t BackgroundObserver::last_number() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return transcript_.last_number();
}

uint64_t BackgroundObserver::lines_observed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return transcript_.lines_observed();
}

std::optional<std::string> BackgroundObserver::violation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return transcript_.violation();
}

}  // namespace understudy::testing
