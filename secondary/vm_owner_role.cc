#include "secondary/vm_owner_role.h"

#include <unistd.h>

#include "common/log.h"

namespace understudy::secondary {

using failover::ControllerState;
using failover::Event;
using failover::EventKind;
using nlohmann::json;

namespace {

// How long Carry waits for Start to store the owner before a kPair is dropped (the driver
// thread waits meanwhile; Start takes well under a second).
constexpr int64_t kOwnerBuildMs = 5000;

}  // namespace

VmOwnerRole::VmOwnerRole(std::shared_ptr<failover::ControllerDriver> driver) : driver_(std::move(driver)) {}

VmOwnerRole::~VmOwnerRole() { Stop(); }

Status VmOwnerRole::Start(const primary::ReprotectConfig& config, const failover::FailoverConfig& failover,
                          primary::PromotedStandby standby, uint64_t first_incarnation,
                          std::unique_ptr<transport::Channel> first_secondary) {
  primary::OwnerOptions options;
  options.config.vm = standby.definition;
  options.config.secondary_uri = config.secondary_uri;
  options.config.channel = config.channel;
  options.config.checkpoint_interval_ms = config.checkpoint_interval_ms;
  options.config.max_in_flight = config.max_in_flight;
  options.config.failover = failover;
  options.first_incarnation = first_incarnation;
  options.epochs_after = driver_->snapshot().released;
  Result<std::unique_ptr<primary::VmHost>> host = primary::VmHost::FromPromotedStandby(std::move(standby));
  Result<std::unique_ptr<primary::VmOwner>> owner =
      host.ok() ? primary::VmOwner::Start(std::move(*host), std::move(options),
                                          [driver = driver_](Event event) { driver->Post(std::move(event)); },
                                          /*alone=*/true, std::move(first_secondary))
                : Result<std::unique_ptr<primary::VmOwner>>(host.status());
  {
    MutexLock lock(&mu_);
    if (owner.ok()) owner_ = std::move(*owner);
    start_failed_ = !owner.ok();
    owner_set_.SignalAll();
  }
  if (!owner.ok()) return owner.status();
  watch_thread_ = std::thread([this] { WatchLoop(); });
  return Status::Ok();
}

void VmOwnerRole::Carry(const failover::Action& action) {
  if (action.kind == failover::ActionKind::kPromote) return;  // the secondary promoted it already
  std::shared_ptr<primary::VmOwner> owner;
  {
    // The first secondary is offered inside Start: its kPair may come before the owner is
    // stored. Other actions before that concern no session yet.
    MutexLock lock(&mu_);
    Deadline built = Deadline::AfterMillis(kOwnerBuildMs);
    while (action.kind == failover::ActionKind::kPair && !owner_ && !start_failed_ && !stopping_.load() &&
           !built.Expired()) {
      owner_set_.WaitFor(&mu_, std::chrono::milliseconds(10));
    }
    owner = owner_;
  }
  if (owner) {
    owner->Carry(action);
  } else {
    Log("secondary", "owner action " + failover::ActionName(action) + " before the VM's owner started: dropped");
  }
}

void VmOwnerRole::Stop() {
  if (stopping_.exchange(true)) return;
  if (watch_thread_.joinable()) watch_thread_.join();
  bool started;
  {
    MutexLock lock(&mu_);
    started = owner_ != nullptr;
  }
  if (started) {
    // The controller stops the guest, says goodbye to the new secondary and marks the record.
    Status verdict = driver_->Request(Event::Of(EventKind::kStopRequested, 0), Deadline::AfterMillis(10000));
    if (verdict.ok()) {
      driver_->WaitFor([](ControllerState state) { return state == ControllerState::kStopped; },
                       Deadline::AfterMillis(5000));
    } else {
      Log("secondary", "stopping the promoted VM's owner without the controller's clean stop: " + verdict.ToString());
    }
  }
  std::shared_ptr<primary::VmOwner> owner;
  {
    MutexLock lock(&mu_);
    owner = std::move(owner_);
  }
  if (owner) owner->Shutdown();
}

Status VmOwnerRole::StepDown() {
  return driver_->Request(Event::Of(EventKind::kStepDownRequested, 0), Deadline::AfterMillis(5000));
}

void VmOwnerRole::WatchLoop() {
  while (!stopping_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const ControllerState controller = driver_->snapshot().state;
    primary::VmOwner* owner;
    {
      MutexLock lock(&mu_);
      owner = owner_.get();  // lives until Stop(), which joins this thread first
    }
    state_.Follow(controller, owner && owner->SecondaryCanTakeOver(), owner ? &owner->metrics() : nullptr);
  }
}

json VmOwnerRole::StatusJson() const {
  const failover::ControllerSnapshot snapshot = driver_->snapshot();
  MutexLock lock(&mu_);
  json status = owner_ ? owner_->StatusJson() : json::object();
  state_.AddStatus(snapshot, status);
  status["vm"] = owner_ ? owner_->host().vm().name : "";
  return status;
}

}  // namespace understudy::secondary
