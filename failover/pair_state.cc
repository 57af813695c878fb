#include "failover/pair_state.h"

#include <string>

namespace understudy::failover {

std::string_view StateName(PairState state) {
  switch (state) {
    case PairState::kSyncing: return "syncing";
    case PairState::kProtected: return "protected";
    case PairState::kDegraded: return "degraded";
    case PairState::kFailingOver: return "failing-over";
    case PairState::kUnprotected: return "unprotected";
    case PairState::kPromoted: return "promoted";
    case PairState::kFenced: return "fenced";
    case PairState::kReprotecting: return "re-protecting";
  }
  return "unknown";
}

std::string_view EventName(PairEvent event) {
  switch (event) {
    case PairEvent::kSyncComplete: return "sync-complete";
    case PairEvent::kPathLost: return "path-lost";
    case PairEvent::kPathsRestored: return "paths-restored";
    case PairEvent::kPeerDead: return "peer-dead";
    case PairEvent::kRecordWon: return "record-won";
    case PairEvent::kRecordLost: return "record-lost";
    case PairEvent::kArbiterUnreachable: return "arbiter-unreachable";
    case PairEvent::kNewSecondary: return "new-secondary";
    case PairEvent::kReprotected: return "reprotected";
  }
  return "unknown";
}

namespace {

// The state machine, one function per state; nullopt means illegal.
std::optional<PairState> Transition(Role role, PairState state, PairEvent event) {
  using E = PairEvent;
  using S = PairState;
  switch (state) {
    case S::kSyncing:
      if (event == E::kSyncComplete) return S::kProtected;
      if (event == E::kPeerDead) return S::kFailingOver;  // e.g. the primary went unprotected earlier
      // Paths come and go while the initial image is in flight; still syncing.
      if (event == E::kPathLost || event == E::kPathsRestored) return S::kSyncing;
      return std::nullopt;
    case S::kProtected:
    case S::kDegraded:
      if (event == E::kPathLost) return S::kDegraded;
      if (event == E::kPathsRestored) return S::kProtected;
      if (event == E::kPeerDead) return S::kFailingOver;
      // An operator (or the peer, through the arbiter) took the record while we were healthy.
      if (event == E::kRecordLost) return S::kFenced;
      return std::nullopt;
    case S::kFailingOver:
      if (event == E::kRecordWon) return role == Role::kPrimary ? S::kUnprotected : S::kPromoted;
      if (event == E::kRecordLost) return S::kFenced;
      if (event == E::kArbiterUnreachable) return S::kFailingOver;  // stay, retry, hold output
      if (event == E::kPathsRestored) return S::kProtected;         // false alarm before any swap
      return std::nullopt;
    case S::kUnprotected:
    case S::kPromoted:
      if (event == E::kNewSecondary) return S::kReprotecting;
      return std::nullopt;
    case S::kReprotecting:
      if (event == E::kReprotected) return S::kProtected;
      if (event == E::kPathLost || event == E::kPathsRestored) return S::kReprotecting;
      if (event == E::kPeerDead) return role == Role::kPrimary ? S::kUnprotected : S::kPromoted;
      return std::nullopt;
    case S::kFenced:
      return std::nullopt;  // terminal: an operator restarts the agent
  }
  return std::nullopt;
}

}  // namespace

Result<PairState> NextState(Role role, PairState state, PairEvent event) {
  std::optional<PairState> next = Transition(role, state, event);
  if (!next) {
    return Status::FailedPrecondition(std::string("illegal transition for the ") +
                                      (role == Role::kPrimary ? "primary" : "secondary") + ": " +
                                      std::string(EventName(event)) + " in state " + std::string(StateName(state)));
  }
  return *next;
}

}  // namespace understudy::failover
