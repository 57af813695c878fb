#include "secondary/promoted_owner_role.h"

#include "common/log.h"

namespace understudy::secondary {

void PromotedOwnerRole::Carry(const failover::Action& action) {
  // The PromotedVmOwner's own controller holds and releases output and owns the record.
  Log("secondary", "owner action " + failover::ActionName(action) + " left to the promoted VM's owner");
}

}  // namespace understudy::secondary
