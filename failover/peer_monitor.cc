#include "failover/peer_monitor.h"

#include "common/log.h"

namespace understudy::failover {

Result<std::unique_ptr<PeerMonitor>> PeerMonitor::Start(const PeerMonitorOptions& options,
                                                        std::function<void(PeerVerdict)> on_change) {
  std::unique_ptr<PeerMonitor> monitor(new PeerMonitor(options));
  PeerMonitor* raw = monitor.get();
  UNDERSTUDY_ASSIGN_OR_RETURN(monitor->heartbeat_,
                              Heartbeat::Start(options.udp_listen, "", options.pair_id, options.interval, [raw] {
                                std::lock_guard<std::mutex> lock(raw->mutex_);
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
  std::lock_guard<std::mutex> lock(mutex_);
  detector_.Heard(HeartbeatPath::kChannel, FailureDetector::Clock::now());
}

PeerVerdict PeerMonitor::verdict() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return detector_.Verdict(FailureDetector::Clock::now());
}

void PeerMonitor::Loop() {
  // Checked every 5 ms: detection costs the budget plus at most this.
  while (!stopping_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    PeerVerdict verdict = this->verdict();
    if (verdict == last_verdict_) continue;
    Log("failover", "peer " + std::string(VerdictName(last_verdict_)) + " -> " + std::string(VerdictName(verdict)));
    last_verdict_ = verdict;
    if (on_change_) on_change_(verdict);
  }
}

}  // namespace understudy::failover
