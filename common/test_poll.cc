#include "common/test_poll.h"

#include <algorithm>
#include <thread>

namespace understudy {

bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds within, std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    if (done()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(every, deadline - now));
  }
}

}  // namespace understudy
