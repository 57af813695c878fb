// FailureDetector: decides, from heartbeats seen on several independent paths, whether the
// peer agent is alive, unreachable on the checkpoint link only, or dead.
//
// Heartbeats arrive on paths (the UDP heartbeat socket, the checkpoint channel, ...). The
// peer is declared dead only when *no* path has delivered anything for `budget`: one broken
// cable is not a dead host. When the checkpoint channel alone is silent while another path
// still hears the peer, the verdict is kLinkDown — which must never promote by itself
// (failover/SAFETY.md).
//
// Pure logic over an injected clock: tests drive time explicitly.
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_FAILOVER_FAILURE_DETECTOR_H_
#define UNDERSTUDY_FAILOVER_FAILURE_DETECTOR_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace understudy::failover {

enum class HeartbeatPath { kUdp, kChannel };
std::string_view PathName(HeartbeatPath path);

enum class PeerVerdict {
  kUnknown,   // nothing heard yet
  kAlive,     // every path heard the peer within the budget
  kDegraded,  // some path is silent, but the checkpoint channel still works
  kLinkDown,  // the checkpoint channel is silent, another path still hears the peer
  kDead,      // no path heard anything for the whole budget
};
std::string_view VerdictName(PeerVerdict verdict);

class FailureDetector {
 public:
  using Clock = std::chrono::steady_clock;

  explicit FailureDetector(std::chrono::milliseconds budget = std::chrono::milliseconds(150)) : budget_(budget) {}

  // Something arrived from the peer on `path` at `now`.
  void Heard(HeartbeatPath path, Clock::time_point now);

  PeerVerdict Verdict(Clock::time_point now) const;

  // This host was not running for `stall` (descheduled, a machine-wide pause): nothing could
  // have been heard meanwhile, so that time does not count as the peer's silence. Every
  // path's last-heard time moves forward by `stall`.
  void ForgiveLocalStall(Clock::duration stall);

  // Time since the last heartbeat on any path (nullopt before the first).
  std::optional<Clock::duration> Silence(Clock::time_point now) const;

  std::chrono::milliseconds budget() const { return budget_; }

 private:
  std::chrono::milliseconds budget_;
  std::map<HeartbeatPath, Clock::time_point> last_heard_;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_FAILURE_DETECTOR_H_
