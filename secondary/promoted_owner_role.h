// PromotedOwnerRole: the OwnerRole (secondary/owner_role.h) a promoted standby gets today:
// primary/'s PromotedVmOwner, which adopts the running VM as a VmHost and protects it again
// with ProtectionSessions for a new secondary. It steps a PairController of its own, brought
// to `promoted` from the record this host won, so the secondary's controller has no owner
// actions to hand it and they are only logged. (Next step: one controller per agent, the
// secondary's own carrying the owner actions to a VmOwner; primary/vm_owner.h.)
//
// Thread safety: as OwnerRole.
#ifndef UNDERSTUDY_SECONDARY_PROMOTED_OWNER_ROLE_H_
#define UNDERSTUDY_SECONDARY_PROMOTED_OWNER_ROLE_H_

#include <memory>

#include "primary/promoted_vm_owner.h"
#include "secondary/owner_role.h"

namespace understudy::secondary {

class PromotedOwnerRole : public OwnerRole {
 public:
  explicit PromotedOwnerRole(std::unique_ptr<primary::PromotedVmOwner> owner) : owner_(std::move(owner)) {}
  void Carry(const failover::Action& action) override;
  nlohmann::json StatusJson() const override { return owner_->StatusJson(); }
  Status StepDown() override { return owner_->StepDown(); }
  void Stop() override { owner_->Stop(); }

 private:
  const std::unique_ptr<primary::PromotedVmOwner> owner_;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_PROMOTED_OWNER_ROLE_H_
