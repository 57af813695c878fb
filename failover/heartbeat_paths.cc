#include "failover/heartbeat_paths.h"

#include <openssl/sha.h>

#include <string>
#include <string_view>

namespace understudy::failover {

std::array<uint8_t, 32> SecondPathKey(const std::array<uint8_t, 32>& pair_key) {
  constexpr std::string_view kLabel = "understudy heartbeat path B v1\n";
  std::string input(kLabel);
  input.append(reinterpret_cast<const char*>(pair_key.data()), pair_key.size());
  std::array<uint8_t, 32> key{};
  ::SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), key.data());
  return key;
}

Result<std::unique_ptr<HeartbeatPaths>> HeartbeatPaths::Start(const HeartbeatPathsOptions& options,
                                                              std::function<void(Path)> on_heard) {
  std::unique_ptr<HeartbeatPaths> paths(new HeartbeatPaths());
  const bool redundant = options.second.configured();
  // Without a second network, path A is all the controller's heartbeat paths hear: it stands
  // for both (and status says the pair has no redundant heartbeat path).
  std::function<void()> heard_on_a = [on_heard, redundant] {
    on_heard(Path::kHeartbeatA);
    if (!redundant) on_heard(Path::kHeartbeatB);
  };
  UNDERSTUDY_ASSIGN_OR_RETURN(paths->a_, Heartbeat::Start(options.listen, "", options.pair_id, options.interval,
                                                          options.auth, std::move(heard_on_a)));
  if (redundant) {
    HeartbeatAuth auth_b = options.auth;
    auth_b.key = SecondPathKey(options.auth.key);
    Result<std::unique_ptr<Heartbeat>> b =
        Heartbeat::Start(options.second.listen, options.second.peer, options.pair_id, options.interval, auth_b,
                         [on_heard] { on_heard(Path::kHeartbeatB); });
    if (!b.ok()) return b.status().WithContext("failover.second_heartbeat");
    paths->b_ = std::move(*b);
  }
  return paths;
}

std::string HeartbeatPaths::TakeHoldUpReport() {
  MutexLock lock(&mu_);
  std::string report;
  auto add = [&](const char* path, const HeartbeatStats& stats, uint64_t& reported) {
    if (stats.held_up <= reported) return;
    if (!report.empty()) report += "; ";
    report += std::string("heartbeat path ") + path + " held up " + std::to_string(stats.held_up - reported) +
              " times, longest so far " + std::to_string(static_cast<int64_t>(stats.longest_hold_up_ms)) + " ms";
    reported = stats.held_up;
  };
  add("A", a_->stats(), reported_a_);
  if (b_) add("B", b_->stats(), reported_b_);
  if (!report.empty()) report += ": the peer heard nothing from this host meanwhile";
  return report;
}

void HeartbeatPaths::Pause(bool paused) {
  a_->Pause(paused);
  if (b_) b_->Pause(paused);
}

}  // namespace understudy::failover
