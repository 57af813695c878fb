// LegacyOwnerRole: the OwnerRole (secondary/owner_role.h) of today: a failover::Reprotector
// that protects the promoted VM with a PrimaryAgent of its own, which makes its own ownership
// decisions. The controller's owner actions are therefore only logged. To be replaced by
// primary/'s VmHost + ProtectionSession.
//
// Thread safety: as OwnerRole.
#ifndef UNDERSTUDY_SECONDARY_LEGACY_OWNER_ROLE_H_
#define UNDERSTUDY_SECONDARY_LEGACY_OWNER_ROLE_H_

#include <memory>

#include "failover/reprotector.h"
#include "secondary/owner_role.h"

namespace understudy::secondary {

class LegacyOwnerRole : public OwnerRole {
 public:
  explicit LegacyOwnerRole(std::unique_ptr<failover::Reprotector> reprotector) : reprotector_(std::move(reprotector)) {}
  void Carry(const failover::Action& action) override;
  nlohmann::json StatusJson() const override { return reprotector_->StatusJson(); }
  Status StepDown() override { return reprotector_->StepDown(); }
  void Stop() override { reprotector_->Stop(); }

 private:
  const std::unique_ptr<failover::Reprotector> reprotector_;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_LEGACY_OWNER_ROLE_H_
