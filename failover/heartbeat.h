// Heartbeat: a UDP heartbeat between the two agents of a pair, one path of the failure
// detector (the checkpoint channel is the other).
//
// Each side sends a small datagram every `interval` (default 20 ms) to its peer and answers
// nothing: every datagram carries the sender's instance (random per Start), sequence number
// and clock plus an echo of the last datagram it received and how long that one waited, from
// which the original sender computes the round trip. Loss is counted from gaps in the peer's
// sequence numbers.
//
// Heartbeats are authenticated: every datagram ends in an HMAC-SHA256 under the pair's key
// over everything before it. A datagram counts as hearing the peer only if its MAC is valid,
// its sequence is new for its sender instance, and it echoes one of OUR datagrams sent less
// than `max_echo_age` ago — so neither a forger without the key nor a replay of the peer's
// old datagrams can keep a dead peer alive (a delayed genuine datagram buys at most
// max_echo_age). Everything else is dropped and counted as rejected.
//
// Thread safety: Start() spawns a thread that sends and receives; the accessors are
// thread-safe.
#ifndef UNDERSTUDY_FAILOVER_HEARTBEAT_H_
#define UNDERSTUDY_FAILOVER_HEARTBEAT_H_

#include <array>
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
  uint64_t rejected = 0;  // malformed, from another pair, forged, duplicated or replayed
  uint64_t stale = 0;     // authentic, but echoing none of our recent datagrams: proves nothing
  double last_rtt_ms = 0;
  double smoothed_rtt_ms = 0;
  // Times this heartbeat thread fell kHeldUp or more behind (a send due that late, a send or
  // its listener taking that long): the peer heard nothing meanwhile. And the longest.
  uint64_t held_up = 0;
  double longest_hold_up_ms = 0;
};

// How far behind a heartbeat thread may fall before HeartbeatStats::held_up counts it.
inline constexpr std::chrono::milliseconds kHeldUp{60};

// What makes a datagram believable (see the top of this file).
struct HeartbeatAuth {
  std::array<uint8_t, 32> key{};                   // the pair's shared secret (both sides equal)
  // How old an echo of ours may be and still prove the peer alive. The agents use twice
  // its budget: a loaded host's heartbeat thread may answer late, and a delayed genuine
  // datagram can then postpone a verdict of "dead" by at most this, once.
  std::chrono::milliseconds max_echo_age{150};
};

class Heartbeat {
 public:
  // Binds `local` ("127.0.0.1:0" picks a port) and sends to `peer` (may be empty until
  // SetPeer). `on_heard` runs on the heartbeat thread whenever an authentic, fresh datagram
  // arrived.
  static Result<std::unique_ptr<Heartbeat>> Start(const std::string& local, const std::string& peer, uint64_t pair_id,
                                                  std::chrono::milliseconds interval, const HeartbeatAuth& auth,
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
  void SendOne(uint64_t sequence);
  // Counts `took` in stats_.held_up when it is kHeldUp or more.
  void NoteHoldUp(std::chrono::steady_clock::duration took) EXCLUDES(mutex_);
  // Checks one received datagram; true if it proves the peer alive now.
  bool Accept(const std::byte* datagram, size_t size);

  UniqueFd socket_;
  std::string local_address_;
  uint64_t pair_id_ = 0;
  uint64_t instance_ = 0;  // random per Start: a restarted sender is a new instance
  std::chrono::milliseconds interval_{20};
  HeartbeatAuth auth_;
  std::function<void()> on_heard_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  std::thread thread_;

  mutable Mutex mutex_;
  std::string peer_ GUARDED_BY(mutex_);
  HeartbeatStats stats_ GUARDED_BY(mutex_);
  uint64_t peer_instance_ GUARDED_BY(mutex_) = 0;     // the sender instance whose sequence we follow
  uint64_t last_peer_sequence_ GUARDED_BY(mutex_) = 0;
  uint64_t echo_time_ns_ GUARDED_BY(mutex_) = 0;      // the peer's clock in its last datagram, echoed back
  uint64_t echo_received_ns_ GUARDED_BY(mutex_) = 0;  // when that datagram arrived (our clock)
  uint64_t last_fresh_ns_ GUARDED_BY(mutex_) = 0;     // when the peer last proved itself alive (our clock)
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_HEARTBEAT_H_
