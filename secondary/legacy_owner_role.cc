#include "secondary/legacy_owner_role.h"

#include "common/log.h"

namespace understudy::secondary {

void LegacyOwnerRole::Carry(const failover::Action& action) {
  // The Reprotector's own agent holds and releases output and owns the record meanwhile.
  Log("secondary", "owner action " + failover::ActionName(action) + " left to the reprotector");
}

}  // namespace understudy::secondary
