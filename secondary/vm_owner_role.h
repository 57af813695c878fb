// VmOwnerRole: the OwnerRole (secondary/owner_role.h) of a promoted standby. The VM keeps
// running on this host, adopted as a primary::VmHost, and a primary::VmOwner protects it again
// for a new secondary. The secondary's own PairController decides throughout: its driver,
// already `promoted` from the record this host won, receives what the owner sees (the new
// secondary's hello, heartbeats, captured and acked epochs) and hands its owner actions here.
// One controller per agent, from the first pairing to the next: there is no second one.
//
// Built in two steps so that no action is lost: the agent stores the role first, then calls
// Start, which offers the first new secondary; the controller's kPair for it may arrive
// before Start returns, and Carry waits for the owner to exist.
//
// Thread safety: Carry() on the controller driver's thread; StatusJson() from any; Start(),
// StepDown() and Stop() from the agent's threads (Start before the others).
#ifndef UNDERSTUDY_SECONDARY_VM_OWNER_ROLE_H_
#define UNDERSTUDY_SECONDARY_VM_OWNER_ROLE_H_

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "failover/controller_driver.h"
#include "failover/failover_config.h"
#include "primary/owner_state.h"
#include "primary/reprotect_config.h"
#include "primary/vm_host.h"
#include "primary/vm_owner.h"
#include "secondary/owner_role.h"
#include "transport/channel.h"

namespace understudy::secondary {

class VmOwnerRole : public OwnerRole {
 public:
  // `driver`: the secondary's own controller driver, in `promoted`.
  explicit VmOwnerRole(std::shared_ptr<failover::ControllerDriver> driver);
  ~VmOwnerRole() override;

  // Adopts `standby` and offers it `first_secondary`. `first_incarnation`: above every peer
  // incarnation the controller has seen. Fails when the VM cannot be adopted; the role then
  // stays empty and the VM keeps running alone.
  Status Start(const primary::ReprotectConfig& config, const failover::FailoverConfig& failover,
               primary::PromotedStandby standby, uint64_t first_incarnation,
               std::unique_ptr<transport::Channel> first_secondary) EXCLUDES(mu_);

  void Carry(const failover::Action& action) override EXCLUDES(mu_);
  nlohmann::json StatusJson() const override EXCLUDES(mu_);
  Status StepDown() override;
  void Stop() override EXCLUDES(mu_);

 private:
  void WatchLoop() EXCLUDES(mu_);

  const std::shared_ptr<failover::ControllerDriver> driver_;
  std::atomic<bool> stopping_{false};
  std::thread watch_thread_;
  mutable Mutex mu_;
  CondVar owner_set_;
  // Shared with a Carry in progress on the driver thread: Stop() may end the owner meanwhile.
  std::shared_ptr<primary::VmOwner> owner_ GUARDED_BY(mu_);
  bool start_failed_ GUARDED_BY(mu_) = false;
  primary::OwnerState state_{"secondary", "owner state ", "promoted", /*starts_alone=*/true};
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_VM_OWNER_ROLE_H_
