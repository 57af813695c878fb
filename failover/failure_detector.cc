#include "failover/failure_detector.h"

#include <algorithm>

namespace understudy::failover {

std::string_view PathName(HeartbeatPath path) {
  switch (path) {
    case HeartbeatPath::kUdp: return "udp";
    case HeartbeatPath::kChannel: return "channel";
  }
  return "unknown";
}

std::string_view VerdictName(PeerVerdict verdict) {
  switch (verdict) {
    case PeerVerdict::kUnknown: return "unknown";
    case PeerVerdict::kAlive: return "alive";
    case PeerVerdict::kDegraded: return "degraded";
    case PeerVerdict::kLinkDown: return "link-down";
    case PeerVerdict::kDead: return "dead";
  }
  return "unknown";
}

void FailureDetector::Heard(HeartbeatPath path, Clock::time_point now) {
  auto [it, inserted] = last_heard_.emplace(path, now);
  if (!inserted) it->second = std::max(it->second, now);
}

void FailureDetector::ForgiveLocalStall(Clock::duration stall) {
  for (auto& [path, when] : last_heard_) when += stall;
}

std::optional<FailureDetector::Clock::duration> FailureDetector::Silence(Clock::time_point now) const {
  if (last_heard_.empty()) return std::nullopt;
  Clock::time_point latest = Clock::time_point::min();
  for (const auto& [path, when] : last_heard_) latest = std::max(latest, when);
  return now - latest;
}

PeerVerdict FailureDetector::Verdict(Clock::time_point now) const {
  if (last_heard_.empty()) return PeerVerdict::kUnknown;
  auto fresh = [&](HeartbeatPath path) {
    auto it = last_heard_.find(path);
    return it != last_heard_.end() && now - it->second <= budget_;
  };
  bool any_fresh = fresh(HeartbeatPath::kUdp) || fresh(HeartbeatPath::kChannel);
  if (!any_fresh) return PeerVerdict::kDead;
  if (!fresh(HeartbeatPath::kChannel)) return PeerVerdict::kLinkDown;
  if (!fresh(HeartbeatPath::kUdp)) return PeerVerdict::kDegraded;
  return PeerVerdict::kAlive;
}

}  // namespace understudy::failover
