// PromotedVmOwner: re-protection of a promoted standby for a secondary agent that has no
// PairController of its own yet. It runs one (through a failover::ControllerDriver) brought
// to `promoted` from the ownership record the secondary won, and carries its owner actions
// with a VmOwner (primary/vm_owner.h): the offered new secondary's hello takes the controller
// promoted → re-protecting → (record swapped to {me, protected}) → syncing → protected.
//
// A secondary agent that steps its own PairController does not need this class: it hands
// its VmHost to a VmOwner directly, posts into its own driver and forwards its owner actions
// (vm_owner.h). This one exists so the two sides can change one at a time.
//
// Thread safety: StatusJson() from any thread; the rest from the owner's.
#ifndef UNDERSTUDY_PRIMARY_PROMOTED_VM_OWNER_H_
#define UNDERSTUDY_PRIMARY_PROMOTED_VM_OWNER_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/mutex.h"
#include "common/result.h"
#include "failover/arbiter.h"
#include "failover/controller_driver.h"
#include "failover/failover_config.h"
#include "failover/transition_log.h"
#include "primary/reprotect_config.h"
#include "primary/vm_host.h"
#include "primary/vm_owner.h"

namespace understudy::primary {

class PromotedVmOwner : public failover::ActionHandler {
 public:
  // Takes over `standby` (promoted by this host, which owns the record as {me, promoted})
  // and offers it `channel`, a connection to the new secondary. `old_primary` names the
  // pairing the standby came from.
  static Result<std::unique_ptr<PromotedVmOwner>> Start(const ReprotectConfig& config,
                                                        const failover::FailoverConfig& failover,
                                                        PromotedStandby standby, const std::string& old_primary,
                                                        std::unique_ptr<transport::Channel> channel);
  ~PromotedVmOwner() override;

  // The protecting owner's status (role "primary").
  nlohmann::json StatusJson() const EXCLUDES(mu_);
  // Stops cleanly: the new secondary is told goodbye, the record marked stopped.
  void Stop();
  // A planned switchover: fences this side; the new secondary's promotion wins the record.
  Status StepDown();
  void Carry(const failover::Action& action) override EXCLUDES(mu_);

 private:
  PromotedVmOwner() = default;
  Status ReachPromoted(const failover::FailoverConfig& failover, const std::string& old_primary);
  void WatchLoop() EXCLUDES(mu_);

  std::unique_ptr<failover::Arbiter> arbiter_;
  std::unique_ptr<failover::ControllerDriver> driver_;  // before owner_: Carry checks owner_
  failover::TransitionLog transitions_;
  std::atomic<bool> stopping_{false};
  std::thread watch_thread_;
  mutable Mutex mu_;
  std::unique_ptr<VmOwner> owner_ GUARDED_BY(mu_);
  CondVar owner_set_;
  std::string state_ GUARDED_BY(mu_) = "promoted";
  // It starts alone (a promoted standby), so its first pairing is a re-protection too, even
  // when the watch loop never sees the brief `promoted` / `re-protecting` states.
  bool reprotecting_ GUARDED_BY(mu_) = true;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PROMOTED_VM_OWNER_H_
