#include "failover/peer_monitor.h"

#include "common/log.h"
#include "failover/heartbeat_priority.h"

namespace understudy::failover {

namespace {

constexpr auto kCheckPeriod = std::chrono::milliseconds(5);
// Lateness beyond the period that counts as this host having stalled.
constexpr auto kStallThreshold = std::chrono::milliseconds(25);

}  // namespace

Result<std::unique_ptr<PeerMonitor>> PeerMonitor::Start(const PeerMonitorOptions& options,
                                                        std::function<void(PeerVerdict)> on_change) {
  std::unique_ptr<PeerMonitor> monitor(new PeerMonitor(options));
  PeerMonitor* raw = monitor.get();
  UNDERSTUDY_ASSIGN_OR_RETURN(monitor->heartbeat_,
                              Heartbeat::Start(options.udp_listen, "", options.pair_id, options.interval,
                                               HeartbeatAuth{options.heartbeat_key, 2 * options.budget}, [raw] {
                                MutexLock lock(&raw->mutex_);
                                raw->detector_.Heard(HeartbeatPath::kUdp, FailureDetector::Clock::now());
                              }));
  monitor->on_change_ = std::move(on_change);
  monitor->thread_ = std::thread([raw] { raw->Loop(); });
  return monitor;
}

PeerMonitor::~PeerMonitor() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void PeerMonitor::HeardOnChannel() {
  MutexLock lock(&mutex_);
  detector_.Heard(HeartbeatPath::kChannel, FailureDetector::Clock::now());
}

PeerVerdict PeerMonitor::verdict() const {
  MutexLock lock(&mutex_);
  auto now = FailureDetector::Clock::now();
  ForgiveStallLocked(now);
  return detector_.Verdict(now);
}

void PeerMonitor::ForgiveStallLocked(FailureDetector::Clock::time_point now) const {
  // The monitor checks every kCheckPeriod; a much longer gap means nothing here ran — a
  // loaded or paused host — and both agents of a pair on such a host would otherwise declare
  // each other dead at the same moment. Forgiving only delays a verdict (the safe direction).
  auto gap = now - last_check_;
  last_check_ = now;
  if (gap <= kCheckPeriod + kStallThreshold) return;
  detector_.ForgiveLocalStall(gap - kCheckPeriod);
  if (gap > std::chrono::milliseconds(100) && now >= next_stall_log_) {
    Log("failover", "this host stalled for " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(gap).count()) +
                        " ms; not counted as the peer's silence");
    next_stall_log_ = now + std::chrono::seconds(10);
  }
}

void PeerMonitor::Loop() {
  // A stall of this thread is what ForgiveStallLocked measures: run it at the heartbeats'
  // priority (best effort) so that ordinary load alone does not look like a stall.
  RunAtHeartbeatPriority();
  // Checked every kCheckPeriod: detection costs the budget plus at most this.
  while (!stopping_.load()) {
    std::this_thread::sleep_for(kCheckPeriod);
    PeerVerdict verdict = this->verdict();
    if (verdict == last_verdict_) continue;
    Log("failover", "peer " + std::string(VerdictName(last_verdict_)) + " -> " + std::string(VerdictName(verdict)));
    last_verdict_ = verdict;
    if (on_change_) on_change_(verdict);
  }
}

}  // namespace understudy::failover
