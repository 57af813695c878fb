// The protected pair's state machine, as each agent sees its side of it.
//
//   primary:    syncing → protected ⇄ degraded → failing-over → unprotected → re-protecting
//                                                             ↘ fenced        ↗ protected
//   secondary:  syncing → protected ⇄ degraded → failing-over → promoted → re-protecting → …
//                                                             ↘ fenced
//
// `failing-over` means: the peer was declared dead and this side is attempting the one
// compare-and-swap on the ownership record that may break the output-commit gate (the
// secondary promoting, or the primary going unprotected). Winning it leads to
// unprotected/promoted; losing it to fenced (the loser stops its VM or discards its
// standby); an unreachable arbiter leaves the side in failing-over, retrying, with output
// held (failover/SAFETY.md). Every other (state, event) pair is illegal and refused by name.
#ifndef UNDERSTUDY_FAILOVER_PAIR_STATE_H_
#define UNDERSTUDY_FAILOVER_PAIR_STATE_H_

#include <string_view>

#include "common/result.h"

namespace understudy::failover {

enum class Role { kPrimary, kSecondary };

enum class PairState {
  kSyncing,       // initial full image in progress
  kProtected,     // checkpoints flow and are acknowledged
  kDegraded,      // a heartbeat path is silent; the checkpoint channel still works
  kFailingOver,   // peer declared dead; contending for the ownership record
  kUnprotected,   // primary won: runs and releases output without a secondary
  kPromoted,      // secondary won: the standby runs the VM, unprotected
  kFenced,        // lost the record: VM stopped / standby discarded, releases nothing
  kReprotecting,  // a new secondary is being synchronised
};

enum class PairEvent {
  kSyncComplete,
  kPathLost,        // a heartbeat path went silent (not all of them)
  kPathsRestored,   // every path hears the peer again
  kPeerDead,        // no path heard the peer for the whole budget
  kRecordWon,       // the compare-and-swap succeeded
  kRecordLost,      // the peer (or an operator) owns the record now
  kArbiterUnreachable,
  kNewSecondary,    // a secondary connected for re-protection
  kReprotected,     // its initial sync completed
};

std::string_view StateName(PairState state);
std::string_view EventName(PairEvent event);

// The state after `event` in `state` for `role`; kFailedPrecondition naming both for an
// illegal transition.
Result<PairState> NextState(Role role, PairState state, PairEvent event);

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_PAIR_STATE_H_
