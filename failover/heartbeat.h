// Heartbeat: a UDP heartbeat between the two agents of a pair, one path of the failure
// detector (the checkpoint channel is the other).
//
// Each side sends a small datagram every `interval` (default 20 ms) to its peer and answers
// nothing: every datagram carries the sender's sequence number and clock plus an echo of the
// last datagram it received and how long that one waited, from which the original sender
// computes the round trip. Loss is
// counted from gaps in the peer's sequence numbers. Datagrams from another pair (a different
// pair id) or malformed ones are dropped and counted.
//
// Thread safety: Start() spawns a thread that sends and receives; the accessors are
// thread-safe.
#ifndef UNDERSTUDY_FAILOVER_HEARTBEAT_H_
#define UNDERSTUDY_FAILOVER_HEARTBEAT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace understudy::failover {

struct HeartbeatStats {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost = 0;      // gaps in the peer's sequence
  uint64_t rejected = 0;  // malformed or from another pair
  double last_rtt_ms = 0;
  double smoothed_rtt_ms = 0;
};

class Heartbeat {
 public:
  // Binds `local` ("127.0.0.1:0" picks a port) and sends to `peer` (may be empty until
  // SetPeer). `on_heard` runs on the heartbeat thread for every valid datagram.
  static Result<std::unique_ptr<Heartbeat>> Start(const std::string& local, const std::string& peer, uint64_t pair_id,
                                                  std::chrono::milliseconds interval,
                                                  std::function<void()> on_heard);
  ~Heartbeat();

  void SetPeer(const std::string& peer);
  // The bound address, e.g. "127.0.0.1:40111".
  const std::string& local_address() const { return local_address_; }
  HeartbeatStats stats() const;
  // Stops sending (receiving continues): lets tests and drills silence one side.
  void Pause(bool paused) { paused_.store(paused); }

 private:
  Heartbeat() = default;
  void Loop();

  UniqueFd socket_;
  std::string local_address_;
  uint64_t pair_id_ = 0;
  std::chrono::milliseconds interval_{20};
  std::function<void()> on_heard_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  std::thread thread_;

  mutable Mutex mutex_;
  std::string peer_ GUARDED_BY(mutex_);
  HeartbeatStats stats_ GUARDED_BY(mutex_);
  uint64_t last_peer_sequence_ GUARDED_BY(mutex_) = 0;
  uint64_t echo_time_ns_ GUARDED_BY(mutex_) = 0;      // the peer's clock in its last datagram, echoed back
  uint64_t echo_received_ns_ GUARDED_BY(mutex_) = 0;  // when that datagram arrived (our clock)
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_HEARTBEAT_H_
