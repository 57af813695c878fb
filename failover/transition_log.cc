#include "failover/transition_log.h"

#include <algorithm>
#include <chrono>

namespace understudy::failover {

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void TransitionLog::Record(const std::string& from, const std::string& to, const std::string& why) {
  MutexLock lock(&mutex_);
  entries_.push_back({UnixMillisNow(), from, to, why});
  if (entries_.size() > kKept) entries_.pop_front();
}

nlohmann::json TransitionLog::ToJson() const {
  MutexLock lock(&mutex_);
  nlohmann::json list = nlohmann::json::array();
  for (const Entry& entry : entries_) {
    list.push_back({{"at_unix_ms", entry.at_unix_ms}, {"from", entry.from}, {"to", entry.to}, {"why", entry.why}});
  }
  return list;
}

nlohmann::json TransitionLog::MergedWith(const nlohmann::json& later) const {
  nlohmann::json history = ToJson();
  if (later.is_array()) {
    for (const nlohmann::json& change : later) history.push_back(change);
  }
  std::stable_sort(history.begin(), history.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("at_unix_ms", int64_t{0}) < b.value("at_unix_ms", int64_t{0});
  });
  return history;
}

}  // namespace understudy::failover
