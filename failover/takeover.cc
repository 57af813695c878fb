#include "failover/takeover.h"

#include "common/log.h"

namespace understudy::failover {

namespace {

// True when the record already says what our swap would write: an earlier swap of ours was
// applied although its answer was lost (a timeout, an etcd leader change). Nobody else writes
// our name, so such a record is ours whatever its revision.
bool AlreadyOurs(Arbiter& arbiter, const std::string& me, const char* mode, Deadline deadline) {
  Result<OwnershipRecord> record = arbiter.Read(deadline);
  return record.ok() && record->owner == me && record->mode == mode;
}

}  // namespace

PairEvent ContendForOwnership(Arbiter& arbiter, Role role, const std::string& me, uint64_t seen_revision,
                              Deadline deadline) {
  const char* mode = role == Role::kPrimary ? "unprotected" : "promoted";
  Result<bool> won = arbiter.CompareAndSwap(seen_revision, me, mode, deadline);
  // Neither an error nor "lost" is taken at its word: an unknown outcome, or a retry that lost
  // to our own earlier swap, is resolved by reading the record, never by guessing.
  if (!won.ok() || !*won) {
    if (AlreadyOurs(arbiter, me, mode, deadline)) {
      Log("failover", me + " holds the ownership record as " + mode + " (an earlier swap of ours was applied)");
      return PairEvent::kRecordWon;
    }
  }
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
