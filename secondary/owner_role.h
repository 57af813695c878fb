// OwnerRole: what runs the VM on this host after the standby was promoted, and protects it
// again. The seam between secondary/ (which promotes) and primary/ (which protects a running
// VM): the agent builds one in SecondaryAgent::StartOwnerRole and forwards the pair
// controller's actions (kPair, kUnpair, kReleaseUpTo, kGoUnprotected, kFence, kStopVm,
// kSendGoodbye) to it.
//
// The implementation (secondary/vm_owner_role.h) hands the VM to primary/'s VmOwner (a VmHost
// running ProtectionSessions), driven by the secondary's own controller.
//
// Thread safety: Carry() on the controller driver's thread; StatusJson() from any; StepDown()
// from the control thread; Stop() from the agent's Run thread.
#ifndef UNDERSTUDY_SECONDARY_OWNER_ROLE_H_
#define UNDERSTUDY_SECONDARY_OWNER_ROLE_H_

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "failover/controller_driver.h"

namespace understudy::secondary {

class OwnerRole : public failover::ActionHandler {
 public:
  // The owner's status (role "primary" once it protects the VM again).
  virtual nlohmann::json StatusJson() const = 0;
  // A planned switchover: the protecting side steps down so its secondary promotes.
  virtual Status StepDown() = 0;
  // Stops protecting; the VM keeps running.
  virtual void Stop() = 0;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_OWNER_ROLE_H_
