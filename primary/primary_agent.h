// PrimaryAgent: ft-primary's core. Builds the VM's host (primary/vm_host.h: QEMU launched or
// attached to, its console, disk and NIC), runs its PairController through a
// failover::ControllerDriver, and carries the controller's actions with a VmOwner
// (primary/vm_owner.h), which runs the protection sessions with the secondary.
//
// Every ownership and release decision is the controller's (failover/pair_controller.h,
// failover/SAFETY.md): it claims the ownership record, pairs with the secondary whose hello
// arrives, releases output epoch by epoch as acks arrive, goes unprotected or fences when the
// secondary is gone, and stops cleanly (goodbye, record marked stopped) on request.
//
// Lifecycle: starting (launching, claiming) → the controller's states (status "state") →
// stopped, or failed (see last_error). A fenced agent stays up, guest stopped, until asked to
// stop, so operators can see why.
//
// Thread safety: Run() on one thread; RequestStop(), StepDown() and StatusJson() from any;
// Carry() on the driver thread.
#ifndef UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_
#define UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "control/control_server.h"
#include "failover/arbiter.h"
#include "failover/arbiter_probe.h"
#include "failover/controller_driver.h"
#include "failover/transition_log.h"
#include "primary/primary_config.h"
#include "primary/test_checkpoint_hold.h"
#include "primary/owner_state.h"
#include "primary/vm_owner.h"

namespace understudy::primary {

class PrimaryAgent : public failover::ActionHandler {
 public:
  explicit PrimaryAgent(PrimaryConfig config);
  ~PrimaryAgent() override;

  // Runs until RequestStop() (then stops cleanly: the secondary is told goodbye and the
  // record marked stopped; returns OK) or a fatal error (returned).
  Status Run();
  void RequestStop() { stop_requested_.store(true); }

  // A planned switchover (`ftctl failback`): fences this side without touching the record, so
  // the secondary's promotion wins it. kFailedPrecondition unless protected.
  Status StepDown() EXCLUDES(mu_);

  nlohmann::json StatusJson() const EXCLUDES(mu_);

  // failover::ActionHandler: the controller's owner actions go to the VmOwner.
  void Carry(const failover::Action& action) override EXCLUDES(mu_);

 private:
  Status Serve();
  // Refuses before QEMU starts when the record belongs to another run (the controller's
  // claim decides for good once the VM is up; this only avoids launching a second copy).
  Status CheckRecordBeforeLaunch();
  Status StartController();
  // Follows the controller until it is done (stopped, refused) or a stop is requested.
  Status Watch();
  void Post(failover::Event event) EXCLUDES(mu_);
  // The state as operators see it follows the controller's `snapshot`.
  void FollowController(const failover::ControllerSnapshot& snapshot) EXCLUDES(mu_);
  monitoring::AgentMetrics* metrics() const EXCLUDES(mu_);
  std::map<std::string, control::Handler> ControlHandlers();

  const PrimaryConfig config_;
  std::atomic<bool> stop_requested_{false};
  TestCheckpointHold test_hold_;  // TEST ONLY: armed only with config_.test_control_commands
  std::unique_ptr<failover::Arbiter> arbiter_;  // Run's thread, before the driver starts
  OwnerState state_{"primary", "state ", "starting", /*starts_alone=*/false};

  mutable Mutex mu_;
  // Set by Run before the control thread may use them; reset only after it stopped.
  std::unique_ptr<VmOwner> owner_ GUARDED_BY(mu_);
  std::unique_ptr<failover::ControllerDriver> driver_ GUARDED_BY(mu_);
  std::string last_error_ GUARDED_BY(mu_);
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_
