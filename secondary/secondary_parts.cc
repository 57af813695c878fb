// SecondaryAgent: building its parts (committer, standby, metrics, verifier, heartbeat,
// arbiter, the controller and its driver) and the periodic samples of their health.
#include "common/log.h"
#include "secondary/secondary_agent.h"

namespace understudy::secondary {

using failover::ControllerState;
using failover::Event;

Status SecondaryAgent::StartParts() {
  UNDERSTUDY_RETURN_IF_ERROR(MakeCommitter());
  UNDERSTUDY_ASSIGN_OR_RETURN(metrics_server_, monitoring::MetricsServer::Start(config_.metrics_listen));
  Log("secondary", "metrics on http://" + metrics_server_->address() + "/metrics");
  // The VM's name (this host's own configuration) labels every series.
  metrics_ = std::make_unique<monitoring::AgentMetrics>(
      metrics_server_->registry(), monitoring::AgentIdentity{config_.binding.vm, "secondary", config_.failover.name});
  metrics_->SetPairState("waiting-for-primary");
  committer_->SetMetrics(metrics_.get());
  if (config_.verify_period_ms > 0) {
    StandbyVerifierOptions options;
    options.period = std::chrono::milliseconds(config_.verify_period_ms);
    options.runtime_dir = config_.runtime_dir + "/verify";
    options.qemu_binary = config_.qemu_binary;
    verifier_ = std::make_unique<StandbyVerifier>(options, [this](const VerificationResult& result) {
      metrics_->RecordVerification(result.succeeded, result.duration_seconds);
    });
  }
  UNDERSTUDY_RETURN_IF_ERROR(StartHeartbeat());
  UNDERSTUDY_ASSIGN_OR_RETURN(arbiter_, config_.failover.MakeArbiterFor(config_.binding.vm));
  return StartController();
}

Status SecondaryAgent::MakeCommitter() {
  std::unique_ptr<disk::DiskReplica> disk;
  if (!config_.disk_image.empty()) {
    UNDERSTUDY_ASSIGN_OR_RETURN(disk, disk::DiskReplica::Open(config_.disk_image));
  }
  StandbyOptions standby_options;
  standby_options.runtime_dir = config_.runtime_dir;
  standby_options.qemu_binary = config_.qemu_binary;
  standby_ = std::make_unique<ReadyStandby>(std::move(standby_options), config_.network);
  CommitterOptions options;
  options.binding = config_.binding;
  options.vm_policy = config_.vm_policy;
  options.disk_socket_path = config_.runtime_dir + "/disk.sock";
  options.nic_socket_path = config_.runtime_dir + "/net.sock";
  options.has_network = config_.network.has_value();
  options.test_stall_disk_apply_at_epoch = config_.test_stall_disk_apply_at_epoch;
  options.test_stall_disk_apply = [this](uint64_t) {
    while (!stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  committer_ = std::make_unique<Committer>(std::move(options), std::move(disk), console_, *standby_);
  return Status::Ok();
}

Status SecondaryAgent::StartHeartbeat() {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<failover::HeartbeatPaths> heartbeat,
                              failover::HeartbeatPaths::Start(config_.failover.HeartbeatOptions(),
                                                              [this](failover::Path path) { OnHeartbeatHeard(path); }));
  metrics_->SetHeartbeatNetworks(heartbeat->networks());
  if (!heartbeat->redundant()) {
    Log("secondary", "one heartbeat network: the pair has no redundant heartbeat path (failover.second_heartbeat adds one)");
  }
  MutexLock lock(&status_mutex_);
  heartbeat_ = std::move(heartbeat);
  return Status::Ok();
}

std::string SecondaryAgent::HeartbeatAddress() const {
  MutexLock lock(&status_mutex_);
  return heartbeat_ ? heartbeat_->address() : "";
}

void SecondaryAgent::SetHeartbeatPeer(const std::string& address) {
  MutexLock lock(&status_mutex_);
  if (heartbeat_) heartbeat_->SetPeer(address);
}

Status SecondaryAgent::StartController() {
  StopController();
  UNDERSTUDY_ASSIGN_OR_RETURN(
      failover::PairController controller,
      failover::PairController::Create(config_.failover.ControllerOptions(failover::Role::kSecondary)));
  // A stall of this host longer than 50 ms between two readings is not counted as time the
  // primary was silent (failover/stall_forgiving_clock.h); the driver reads every 10 ms.
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<failover::ControllerDriver> started,
                              failover::ControllerDriver::Start(std::move(controller), *arbiter_, *this,
                                                                failover::StallForgivingDriverOptions(/*max_step_ms=*/50)));
  std::shared_ptr<failover::ControllerDriver> driver(std::move(started));
  std::string before, after;
  {
    MutexLock lock(&status_mutex_);
    before = StateNameLocked();
    state_ = ControllerState::kJoining;
    orders_ = Orders{};  // the previous pairing's, if any: none of them concerns the next
    after = StateNameLocked();
  }
  if (before != after) transitions_.Record(before, after, "a new pairing begins");
  watcher_stop_.store(false);
  MutexLock lock(&controller_mutex_);
  driver_ = driver;
  watcher_ = std::make_unique<std::thread>([this, driver] { WatchController(driver); });
  return Status::Ok();
}

void SecondaryAgent::StopController() {
  std::shared_ptr<failover::ControllerDriver> driver;
  std::unique_ptr<std::thread> watcher;
  {
    MutexLock lock(&controller_mutex_);
    driver = std::move(driver_);
    watcher = std::move(watcher_);
  }
  watcher_stop_.store(true);
  if (watcher) watcher->join();
  // The driver stops here unless another thread still holds it (it then stops there).
}

void SecondaryAgent::WatchController(std::shared_ptr<failover::ControllerDriver> driver) {
  ControllerState seen = ControllerState::kJoining;
  while (!watcher_stop_.load()) {
    ControllerState now =
        driver->WaitFor([&](ControllerState state) { return state != seen; }, Deadline::AfterMillis(100));
    if (now == seen) continue;
    OnControllerState(now);
    seen = now;
  }
}

std::shared_ptr<failover::ControllerDriver> SecondaryAgent::driver() const {
  MutexLock lock(&controller_mutex_);
  return driver_;
}

void SecondaryAgent::Post(Event event) const {
  // Under the lock rather than on a copy of the pointer: the heartbeat thread posts, and the
  // last copy of a replaced driver would stop it there, waiting out an arbiter request.
  MutexLock lock(&controller_mutex_);
  if (driver_) driver_->Post(std::move(event));
}

void SecondaryAgent::Sample() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_sample_) return;
  next_sample_ = now + std::chrono::milliseconds(250);
  std::string held_up;
  {
    MutexLock lock(&status_mutex_);
    if (heartbeat_) {
      failover::HeartbeatStats heartbeats = heartbeat_->stats();
      metrics_->SetHeartbeat(heartbeats.smoothed_rtt_ms / 1000, heartbeats.lost);
      held_up = heartbeat_->TakeHoldUpReport();
    }
  }
  if (!held_up.empty()) Log("secondary", held_up);
  // Never verified counts from the agent's start, so a verifier that never runs still ages
  // into the alert.
  std::optional<VerificationResult> verified = verifier_ ? verifier_->last() : std::nullopt;
  auto since = verified ? verified->finished : started_at_;
  metrics_->SetVerificationAge(std::chrono::duration<double>(std::chrono::system_clock::now() - since).count());
  int reachable = arbiter_reachable_.load();
  if (reachable >= 0) metrics_->SetArbiterReachable(reachable == 1);
}

}  // namespace understudy::secondary
