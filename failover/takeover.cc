#include "failover/takeover.h"

#include "common/log.h"

namespace understudy::failover {

PairEvent ContendForOwnership(Arbiter& arbiter, Role role, const std::string& me, uint64_t seen_revision,
                              Deadline deadline) {
  const char* mode = role == Role::kPrimary ? "unprotected" : "promoted";
  Result<bool> won = arbiter.CompareAndSwap(seen_revision, me, mode, deadline);
  if (!won.ok()) {
    Log("failover", std::string("arbiter unreachable, no takeover (output stays held): ") + won.status().ToString());
    return PairEvent::kArbiterUnreachable;
  }
  if (*won) {
    Log("failover", me + " took the ownership record at revision " + std::to_string(seen_revision) + " as " + mode);
    return PairEvent::kRecordWon;
  }
  Log("failover", me + " lost the ownership record (revision " + std::to_string(seen_revision) +
                      " changed first): fencing itself");
  return PairEvent::kRecordLost;
}

}  // namespace understudy::failover
