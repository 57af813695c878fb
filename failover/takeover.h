// The single decision on the failover path: the peer was declared dead; try to take the VM's
// ownership record from the revision this side last saw.
//
//   secondary: {owner: me, mode: "promoted"}    → won: promote the standby
//   primary:   {owner: me, mode: "unprotected"} → won: release output without acks
//
// Returns kRecordWon, kRecordLost (the peer or an operator got there first: fence now), or
// kArbiterUnreachable (decide nothing; keep output held and retry). A swap whose answer was
// lost or that "lost" to our own earlier, applied swap is resolved by reading the record: if
// it already names this side in the wanted mode, this side won.
#ifndef UNDERSTUDY_FAILOVER_TAKEOVER_H_
#define UNDERSTUDY_FAILOVER_TAKEOVER_H_

#include <string>

#include "failover/arbiter.h"
#include "failover/pair_state.h"

namespace understudy::failover {

PairEvent ContendForOwnership(Arbiter& arbiter, Role role, const std::string& me, uint64_t seen_revision,
                              Deadline deadline);

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_TAKEOVER_H_
