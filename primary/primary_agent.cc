#include "primary/primary_agent.h"

#include <unistd.h>

#include <thread>

#include "common/log.h"
#include "common/private_directory.h"
#include "failover/stall_forgiving_clock.h"

namespace understudy::primary {

using failover::ControllerState;
using nlohmann::json;

namespace {

// What the status always said about the peer, from the controller's state.
std::string PeerVerdict(ControllerState state) {
  switch (state) {
    case ControllerState::kSyncing:
    case ControllerState::kProtected: return "alive";
    case ControllerState::kDegraded: return "degraded";
    case ControllerState::kContending:
    case ControllerState::kUnprotected: return "dead";
    default: return "unknown";
  }
}

}  // namespace

PrimaryAgent::PrimaryAgent(PrimaryConfig config) : config_(std::move(config)) {}

PrimaryAgent::~PrimaryAgent() = default;

Status PrimaryAgent::Run() {
  Status status = Serve();
  {
    MutexLock lock(&mu_);
    if (!status.ok()) last_error_ = status.ToString();
  }
  state_.Set(status.ok() ? "stopped" : "failed", metrics());
  if (!status.ok()) Log("primary", "failed: " + status.ToString());
  stop_requested_.store(true);
  // No action is carried after the driver is gone; the owner's sessions end with it.
  std::unique_ptr<failover::ControllerDriver> driver;
  std::unique_ptr<VmOwner> owner;
  {
    MutexLock lock(&mu_);
    driver = std::move(driver_);
  }
  driver.reset();
  {
    MutexLock lock(&mu_);
    owner = std::move(owner_);
  }
  if (owner) owner->Shutdown();
  return status;
}

Status PrimaryAgent::Serve() {
  UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(config_.runtime_dir));
  if (config_.test_control_commands && config_.test_hold_checkpoint_at_epoch > 0) {
    test_hold_.Arm(config_.test_hold_checkpoint_at_epoch);
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<control::ControlServer> control,
                              control::ControlServer::Start(config_.control_socket(), ControlHandlers()));
  UNDERSTUDY_ASSIGN_OR_RETURN(arbiter_, config_.failover.MakeArbiterFor(config_.vm.name));
  UNDERSTUDY_RETURN_IF_ERROR(CheckRecordBeforeLaunch());
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<VmHost> host, VmHost::Launch(config_));
  if (stop_requested_.load()) return Status::Ok();
  Result<std::unique_ptr<transport::Channel>> channel =
      transport::Dial(config_.secondary_uri, config_.channel, Deadline::AfterMillis(30000));
  if (!channel.ok()) return channel.status().WithContext("connecting to the secondary");
  Log("primary", "connected to the secondary at " + config_.secondary_uri);
  OwnerOptions options{config_, "primary", config_.test_control_commands ? &test_hold_ : nullptr};
  UNDERSTUDY_ASSIGN_OR_RETURN(
      std::unique_ptr<VmOwner> owner,
      VmOwner::Start(std::move(host), std::move(options), [this](failover::Event event) { Post(std::move(event)); },
                     /*alone=*/false));
  VmOwner* raw_owner = owner.get();
  {
    MutexLock lock(&mu_);
    owner_ = std::move(owner);
  }
  UNDERSTUDY_RETURN_IF_ERROR(StartController());
  raw_owner->Offer(std::move(*channel));
  // Operators must see an arbiter outage before a failover needs the arbiter.
  monitoring::AgentMetrics* metrics = &raw_owner->metrics();
  failover::ArbiterProbe probe(*arbiter_, std::chrono::seconds(5),
                               [metrics](bool reachable) { metrics->SetArbiterReachable(reachable); });
  Status watched = Watch();
  control.reset();  // no status request reads the owner or the driver after this
  return watched;
}

Status PrimaryAgent::CheckRecordBeforeLaunch() {
  Result<failover::OwnershipRecord> record = arbiter_->Read(Deadline::AfterMillis(2000));
  if (!record.ok()) return record.status().WithContext("reading the ownership record from " + arbiter_->Describe());
  if (record->revision == 0 || record->mode == "stopped") {
    if (record->revision == 0 || record->owner == config_.failover.name) return Status::Ok();
  }
  if (record->owner != config_.failover.name) {
    return Status::FailedPrecondition("VM '" + config_.vm.name + "' is owned by " + record->owner + " (" + record->mode +
                                      ") in " + arbiter_->Describe() + "; refusing to run a second copy");
  }
  // Ours, but left by an earlier run that did not stop cleanly (a crash, a kill): its
  // secondary may be promoting the VM right now, and starting it afresh would throw that away.
  return Status::FailedPrecondition(
      "an earlier run on this host left VM '" + config_.vm.name + "' in mode '" + record->mode +
      "' without stopping cleanly; its secondary may be taking it over. Check the secondary (ftctl status); if no "
      "copy of the VM runs anywhere, delete the record in " + arbiter_->Describe() + " and start again");
}

Status PrimaryAgent::StartController() {
  UNDERSTUDY_ASSIGN_OR_RETURN(failover::PairController controller,
                              failover::PairController::Create(config_.failover.ControllerOptions(failover::Role::kPrimary)));
  // This host's own stalls are not the secondary's silence (stall_forgiving_clock.h).
  UNDERSTUDY_ASSIGN_OR_RETURN(
      std::unique_ptr<failover::ControllerDriver> driver,
      failover::ControllerDriver::Start(std::move(controller), *arbiter_, *this,
                                        failover::StallForgivingDriverOptions(failover::kMaxClockStepMs)));
  failover::ControllerDriver* raw = driver.get();
  {
    MutexLock lock(&mu_);
    driver_ = std::move(driver);
  }
  ControllerState claimed =
      raw->WaitFor([](ControllerState state) { return state != ControllerState::kClaiming; }, Deadline::AfterMillis(15000));
  if (claimed == ControllerState::kClaiming) return Status::DeadlineExceeded("could not reach the arbiter to claim the VM");
  if (claimed == ControllerState::kRefused) {
    return Status::FailedPrecondition("VM '" + config_.vm.name + "': the ownership record in " + arbiter_->Describe() +
                                      " belongs to another run; refusing to run a second copy");
  }
  Log("primary", "owns VM '" + config_.vm.name + "' (" + arbiter_->Describe() + ")");
  return Status::Ok();
}

Status PrimaryAgent::Watch() {
  failover::ControllerDriver* driver;
  {
    MutexLock lock(&mu_);
    driver = driver_.get();
  }
  auto over = [](ControllerState state) {
    return state == ControllerState::kStopped || state == ControllerState::kRefused;
  };
  while (!stop_requested_.load()) {
    failover::ControllerSnapshot snapshot = driver->snapshot();
    FollowController(snapshot);
    if (over(snapshot.state)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // A clean stop: the controller stops the guest, says goodbye and marks the record stopped.
  Status verdict = driver->Request(failover::Event::Of(failover::EventKind::kStopRequested, 0), Deadline::AfterMillis(10000));
  if (verdict.ok()) {
    driver->WaitFor([&](ControllerState state) { return over(state) || state == ControllerState::kFenced; },
                    Deadline::AfterMillis(5000));
  } else {
    Log("primary", "stopping without the controller's clean stop: " + verdict.ToString());
  }
  FollowController(driver->snapshot());
  return Status::Ok();
}

void PrimaryAgent::Post(failover::Event event) {
  MutexLock lock(&mu_);
  if (driver_) driver_->Post(std::move(event));
}

void PrimaryAgent::Carry(const failover::Action& action) {
  VmOwner* owner;
  {
    MutexLock lock(&mu_);
    owner = owner_.get();
  }
  if (owner) owner->Carry(action);
}

void PrimaryAgent::FollowController(const failover::ControllerSnapshot& snapshot) {
  VmOwner* owner;
  {
    MutexLock lock(&mu_);
    owner = owner_.get();
  }
  state_.Follow(snapshot.state, owner && owner->SecondaryCanTakeOver(), owner ? &owner->metrics() : nullptr);
}

monitoring::AgentMetrics* PrimaryAgent::metrics() const {
  MutexLock lock(&mu_);
  return owner_ ? &owner_->metrics() : nullptr;
}

Status PrimaryAgent::StepDown() {
  failover::ControllerDriver* driver;
  {
    MutexLock lock(&mu_);
    driver = driver_.get();
  }
  if (!driver) return Status::FailedPrecondition("only a protected primary can step down (this one is starting)");
  UNDERSTUDY_RETURN_IF_ERROR(
      driver->Request(failover::Event::Of(failover::EventKind::kStepDownRequested, 0), Deadline::AfterMillis(5000)));
  Log("primary", "stepped down at an operator's request (failback); the secondary takes over");
  return Status::Ok();
}

std::map<std::string, control::Handler> PrimaryAgent::ControlHandlers() {
  std::map<std::string, control::Handler> handlers = {
      {"status", [this](const json&) -> Result<json> { return StatusJson(); }},
      {"step_down", [this](const json&) -> Result<json> {
         UNDERSTUDY_RETURN_IF_ERROR(StepDown());
         return json{{"stepped_down", true}};
       }}};
  if (config_.test_control_commands) {
    test_hold_.AddControlCommands(handlers, [this] {
      json status = StatusJson();
      return status.value("epoch", uint64_t{0});
    });
  }
  return handlers;
}

json PrimaryAgent::StatusJson() const {
  VmOwner* owner;
  failover::ControllerSnapshot snapshot;
  std::string error;
  {
    MutexLock lock(&mu_);
    owner = owner_.get();
    if (driver_) snapshot = driver_->snapshot();
    error = last_error_;
  }
  json status = owner ? owner->StatusJson() : json::object();
  state_.AddStatus(snapshot, status);
  if (!error.empty() || !status.contains("last_error")) status["last_error"] = error;
  status["vm"] = config_.vm.name;
  status["owner_name"] = config_.failover.name;
  status["peer"] = PeerVerdict(snapshot.state);
  return status;
}

}  // namespace understudy::primary
