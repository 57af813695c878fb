// PeerMonitor: everything an agent needs to know whether its peer lives — a UDP heartbeat
// path, the checkpoint channel as a second path (the agent reports what it hears there), and
// the failure detector over both — with a thread that reports verdict changes.
//
// Thread safety: all methods are thread-safe; `on_change` runs on the monitor's thread.
#ifndef UNDERSTUDY_FAILOVER_PEER_MONITOR_H_
#define UNDERSTUDY_FAILOVER_PEER_MONITOR_H_

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "failover/failure_detector.h"
#include "failover/heartbeat.h"

namespace understudy::failover {

struct PeerMonitorOptions {
  std::string udp_listen = "127.0.0.1:0";  // where our heartbeats come from and arrive
  std::chrono::milliseconds interval{20};   // heartbeat period on each path
  std::chrono::milliseconds budget{150};    // silence on every path before "dead"
  uint64_t pair_id = 0;                     // refuses another pair's heartbeats
  std::array<uint8_t, 32> heartbeat_key{};  // authenticates heartbeats (failover_config.h)
};

class PeerMonitor {
 public:
  static Result<std::unique_ptr<PeerMonitor>> Start(const PeerMonitorOptions& options,
                                                    std::function<void(PeerVerdict)> on_change);
  ~PeerMonitor();

  void SetPeerUdpAddress(const std::string& address) { heartbeat_->SetPeer(address); }
  const std::string& udp_address() const { return heartbeat_->local_address(); }
  // Something arrived from the peer on the checkpoint channel.
  void HeardOnChannel();
  PeerVerdict verdict() const;
  HeartbeatStats udp_stats() const { return heartbeat_->stats(); }
  std::chrono::milliseconds budget() const { return options_.budget; }
  // Stops our UDP heartbeats (drills: simulate a dead host's silence).
  void PauseHeartbeats(bool paused) { heartbeat_->Pause(paused); }

 private:
  explicit PeerMonitor(const PeerMonitorOptions& options) : options_(options), detector_(options.budget) {}
  void Loop();

  // Called with mutex_ held before every verdict: a gap since the previous check far longer
  // than the monitor's period means this host stalled (see FailureDetector::ForgiveLocalStall).
  void ForgiveStallLocked(FailureDetector::Clock::time_point now) const REQUIRES(mutex_);

  const PeerMonitorOptions options_;
  std::unique_ptr<Heartbeat> heartbeat_;
  std::function<void(PeerVerdict)> on_change_;
  mutable Mutex mutex_;
  // Mutable: forgiving a local stall (even from a const verdict()) is bookkeeping about this
  // host, not a change in what is known about the peer.
  mutable FailureDetector detector_ GUARDED_BY(mutex_);
  mutable FailureDetector::Clock::time_point last_check_ GUARDED_BY(mutex_) = FailureDetector::Clock::now();
  mutable FailureDetector::Clock::time_point next_stall_log_ GUARDED_BY(mutex_);
  PeerVerdict last_verdict_ = PeerVerdict::kUnknown;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_PEER_MONITOR_H_
