// HeartbeatPaths: the UDP heartbeat paths of one agent to its peer, each reported to the
// PairController as its own Path, so that the controller's three paths (the replication link,
// heartbeat A, heartbeat B) are three independent witnesses rather than two names for one.
//
//   path A  `heartbeat_listen`: its bound address is told to the peer at pairing (hello), and
//           the peer's address on it arrives the same way (SetPeer).
//   path B  `second_heartbeat` (optional): this host's address on a second, independent
//           network and the peer's address there, both from the configuration (each host's
//           config names the other), so a cut of network A leaves B hearing the peer.
//
// Without path B the pair has no redundant heartbeat path: every datagram heard on A is
// reported as both kHeartbeatA and kHeartbeatB (a cut of the one heartbeat network then looks
// like two lost paths, as it is). redundant() says which, for status and metrics.
//
// Each path authenticates on its own: path B's key is derived from the pair's key and the
// path's name, so a datagram captured on one network proves nothing when replayed on the other.
//
// Thread safety: Start() spawns one thread per path; `on_heard` runs on those threads. Every
// method is thread-safe.
#ifndef UNDERSTUDY_FAILOVER_HEARTBEAT_PATHS_H_
#define UNDERSTUDY_FAILOVER_HEARTBEAT_PATHS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/mutex.h"
#include "failover/heartbeat.h"
#include "failover/pair_controller.h"

namespace understudy::failover {

// Path B of a pair: both addresses fixed by configuration (failover_config.h).
struct SecondHeartbeatPath {
  std::string listen;  // this host's address on the second heartbeat network (host:port)
  std::string peer;    // the peer's address on that network (host:port)
  bool configured() const { return !listen.empty(); }
};

struct HeartbeatPathsOptions {
  std::string listen = "127.0.0.1:0";  // path A (port 0: any; the peer is told at pairing)
  SecondHeartbeatPath second;          // path B; not configured: no redundant path
  uint64_t pair_id = 0;
  std::chrono::milliseconds interval{20};
  HeartbeatAuth auth;  // path A's; path B's key is derived from it
};

class HeartbeatPaths {
 public:
  // Binds every configured path and starts heartbeating. `on_heard(path)` runs whenever an
  // authentic, fresh datagram arrived on `path` (see the top of this file for one path only).
  static Result<std::unique_ptr<HeartbeatPaths>> Start(const HeartbeatPathsOptions& options,
                                                       std::function<void(Path)> on_heard);

  // Path A's peer, as the peer announced it at pairing.
  void SetPeer(const std::string& address) { a_->SetPeer(address); }
  // Path A's bound address (what the peer is told).
  const std::string& address() const { return a_->local_address(); }
  // Path B's bound address; empty without path B.
  std::string second_address() const { return b_ ? b_->local_address() : ""; }
  // True when two independent heartbeat networks are configured.
  bool redundant() const { return b_ != nullptr; }
  // Independent heartbeat networks to the peer: 1 or 2.
  int networks() const { return b_ ? 2 : 1; }
  // Stops (or resumes) sending on every path; receiving continues.
  void Pause(bool paused);
  // Path A's counters, and path B's (zero without path B).
  HeartbeatStats stats() const { return a_->stats(); }
  HeartbeatStats second_stats() const { return b_ ? b_->stats() : HeartbeatStats{}; }
  // For the agent's log, from its own (ordinary) thread: a sentence when a heartbeat thread
  // was held up since the last call ("heartbeat path A held up 2 times, longest 312 ms: the
  // peer heard nothing meanwhile"); empty otherwise.
  std::string TakeHoldUpReport() EXCLUDES(mu_);

 private:
  HeartbeatPaths() = default;

  std::unique_ptr<Heartbeat> a_;
  std::unique_ptr<Heartbeat> b_;  // null: no second network
  Mutex mu_;
  uint64_t reported_a_ GUARDED_BY(mu_) = 0;  // held_up counts already reported
  uint64_t reported_b_ GUARDED_BY(mu_) = 0;
};

// The key path B authenticates with, derived from the pair's key (exposed for tests).
std::array<uint8_t, 32> SecondPathKey(const std::array<uint8_t, 32>& pair_key);

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_HEARTBEAT_PATHS_H_
