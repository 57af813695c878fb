#include "primary/promoted_vm_owner.h"

#include <unistd.h>

#include "common/log.h"
#include "common/process_space.h"
#include "failover/stall_forgiving_clock.h"

namespace understudy::primary {

using failover::ControllerState;
using failover::Event;
using failover::EventKind;
using nlohmann::json;

Result<std::unique_ptr<PromotedVmOwner>> PromotedVmOwner::Start(const ReprotectConfig& config,
                                                                const failover::FailoverConfig& failover,
                                                                PromotedStandby standby, const std::string& old_primary,
                                                                std::unique_ptr<transport::Channel> channel) {
  std::unique_ptr<PromotedVmOwner> self(new PromotedVmOwner());
  OwnerOptions options;
  options.config.vm = standby.definition;
  options.config.secondary_uri = config.secondary_uri;
  options.config.channel = config.channel;
  options.config.checkpoint_interval_ms = config.checkpoint_interval_ms;
  options.config.max_in_flight = config.max_in_flight;
  options.config.failover = failover;
  UNDERSTUDY_ASSIGN_OR_RETURN(self->arbiter_, failover.MakeArbiterFor(standby.definition.name));
  UNDERSTUDY_RETURN_IF_ERROR(self->ReachPromoted(failover, old_primary));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<VmHost> host, VmHost::FromPromotedStandby(std::move(standby)));
  failover::ControllerDriver* driver = self->driver_.get();
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<VmOwner> owner,
                              VmOwner::Start(std::move(host), std::move(options),
                                             [driver](Event event) { driver->Post(std::move(event)); }, /*alone=*/true,
                                             std::move(channel)));
  {
    MutexLock lock(&self->mu_);
    self->owner_ = std::move(owner);
    self->owner_set_.SignalAll();
  }
  self->watch_thread_ = std::thread([raw_self = self.get()] { raw_self->WatchLoop(); });
  return self;
}

Status PromotedVmOwner::ReachPromoted(const failover::FailoverConfig& failover, const std::string& old_primary) {
  failover::PairControllerOptions options;
  options.role = failover::Role::kSecondary;
  options.me = failover.name;
  options.budget_ms = failover.monitor.budget.count();
  options.has_arbiter = failover.arbiter != "none";
  options.single_host_without_arbiter = !options.has_arbiter;
  UNDERSTUDY_ASSIGN_OR_RETURN(failover::PairController controller, failover::PairController::Create(std::move(options)));
  failover::ControllerDriverOptions driver_options;
  driver_options.clock_ms = [clock = std::make_shared<failover::StallForgivingClock>(failover::kMaxClockStepMs)] { return clock->Now(); };
  UNDERSTUDY_ASSIGN_OR_RETURN(driver_,
                              failover::ControllerDriver::Start(std::move(controller), *arbiter_, *this, driver_options));
  // The pairing the standby came from, as the secondary knew it; its primary is silent, and
  // the record this host won ({me, promoted}) takes the controller to promoted.
  Event welcome = Event::Of(EventKind::kWelcome, 0);
  welcome.peer = old_primary;
  driver_->Post(welcome);
  Event committed = Event::Of(EventKind::kCommitted, 0);
  committed.epoch = 1;
  driver_->Post(committed);
  ControllerState reached = driver_->WaitFor(
      [](ControllerState state) {
        return state == ControllerState::kPromoted || state == ControllerState::kFenced ||
               state == ControllerState::kStoodDown;
      },
      Deadline::AfterMillis(10000));
  if (reached != ControllerState::kPromoted) {
    return Status::FailedPrecondition("the ownership record does not show this host's promotion (controller " +
                                      std::string(failover::ControllerStateName(reached)) + ")");
  }
  return Status::Ok();
}

PromotedVmOwner::~PromotedVmOwner() { Stop(); }

void PromotedVmOwner::Stop() {
  if (stopping_.exchange(true)) return;
  if (watch_thread_.joinable()) watch_thread_.join();
  if (driver_) {
    Status verdict = driver_->Request(Event::Of(EventKind::kStopRequested, 0), Deadline::AfterMillis(10000));
    if (verdict.ok()) {
      driver_->WaitFor([](ControllerState state) { return state == ControllerState::kStopped; }, Deadline::AfterMillis(5000));
    }
    driver_.reset();
  }
  std::unique_ptr<VmOwner> owner;
  {
    MutexLock lock(&mu_);
    owner = std::move(owner_);
  }
  if (owner) owner->Shutdown();
}

Status PromotedVmOwner::StepDown() {
  return driver_->Request(Event::Of(EventKind::kStepDownRequested, 0), Deadline::AfterMillis(5000));
}

void PromotedVmOwner::Carry(const failover::Action& action) {
  if (action.kind == failover::ActionKind::kPromote) return;  // the secondary promoted it already
  VmOwner* owner;
  {
    // The first secondary is offered while the owner is being built: its kPair may come
    // before Start stored the owner.
    // (Actions before that, on the way to `promoted`, concern no session and are dropped.)
    MutexLock lock(&mu_);
    Deadline built = Deadline::AfterMillis(5000);
    while (action.kind == failover::ActionKind::kPair && !owner_ && !stopping_.load() && !built.Expired()) {
      owner_set_.WaitFor(&mu_, std::chrono::milliseconds(10));
    }
    owner = owner_.get();
  }
  if (owner) owner->Carry(action);
}

void PromotedVmOwner::WatchLoop() {
  while (!stopping_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    failover::ControllerSnapshot snapshot = driver_->snapshot();
    MutexLock lock(&mu_);
    std::string state(failover::ControllerStateName(snapshot.state));
    // Syncing after running alone is the re-protection, however briefly the controller was
    // in `re-protecting` itself (the swap takes one arbiter round trip).
    if (snapshot.state == ControllerState::kReprotecting || snapshot.state == ControllerState::kPromoted ||
        snapshot.state == ControllerState::kUnprotected) {
      reprotecting_ = true;
    }
    bool ready = snapshot.state != ControllerState::kProtected || (owner_ && owner_->SecondaryCanTakeOver());
    bool pairing = snapshot.state == ControllerState::kReprotecting || snapshot.state == ControllerState::kSyncing ||
                   (snapshot.state == ControllerState::kProtected && !ready);
    if (reprotecting_ && pairing) state = "re-protecting";
    if (snapshot.state == ControllerState::kContending) state = "failing-over";
    if (snapshot.state == ControllerState::kProtected && ready) reprotecting_ = false;
    if (state == state_) continue;
    Log("secondary", "owner state " + state_ + " -> " + state);
    transitions_.Record(state_, state, "controller");
    if (owner_) owner_->metrics().SetPairState(state);
    state_ = state;
  }
}

json PromotedVmOwner::StatusJson() const {
  MutexLock lock(&mu_);
  json status = owner_ ? owner_->StatusJson() : json::object();
  status["role"] = "primary";
  status["state"] = state_;
  status["vm"] = owner_ ? owner_->host().vm().name : "";
  status["transitions"] = transitions_.ToJson();
  status["pid"] = ::getpid();
  status["process_space"] = ThisProcessSpace();
  return status;
}

}  // namespace understudy::primary
