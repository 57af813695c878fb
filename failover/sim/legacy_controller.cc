#include "failover/sim/legacy_controller.h"

#include <algorithm>

namespace understudy::failover::sim {

LegacyController::LegacyController(Role role, std::string me, int64_t budget_ms, int64_t sync_grace_ms)
    : role_(role), me_(std::move(me)), budget_ms_(budget_ms), sync_grace_ms_(sync_grace_ms) {}

std::string LegacyController::StateName() const {
  if (exited_) return "exited";
  if (fenced_) return "fenced";
  if (role_ == Role::kSecondary && waiting_for_primary_) return "waiting-for-primary";
  return std::string(failover::StateName(state_));
}

bool LegacyController::Serving() const {
  if (exited_ || fenced_) return false;
  if (role_ == Role::kPrimary) return claimed_ || state_ == PairState::kReprotecting;
  return state_ == PairState::kPromoted;
}

bool LegacyController::AcceptsCheckpoints() const {
  return role_ == Role::kSecondary && !peer_.empty() && !fenced_ && !exited_ && !waiting_for_primary_ &&
         state_ != PairState::kPromoted;
}

void LegacyController::Set(PairEvent event) {
  // Illegal transitions are logged and ignored by today's agents: so here.
  Result<PairState> next = NextState(role_, state_, event);
  if (next.ok()) state_ = *next;
}

void LegacyController::Request(Waiting what, int64_t timeout_ms, Actions& out, bool cas, uint64_t expected,
                               RecordMode mode) {
  waiting_ = what;
  pending_ = next_request_++;
  Action action{.kind = cas ? ActionKind::kCompareAndSwap : ActionKind::kReadRecord, .request = pending_};
  action.timeout_ms = timeout_ms;
  if (cas) {
    action.expected_revision = expected;
    action.owner = me_;
    action.mode = mode;
  }
  out.push_back(action);
}

void LegacyController::Release(Actions& out) {
  if (fenced_ || exited_) return;
  uint64_t target = unprotected_output_ ? captured_ : std::min(acked_, captured_);
  if (target > released_) {
    released_ = target;
    out.push_back(Action{.kind = ActionKind::kReleaseUpTo, .epoch = target});
  }
}

void LegacyController::FenceSelf(Actions& out) {
  if (role_ == Role::kPrimary) Set(PairEvent::kRecordLost);
  else state_ = PairState::kFenced;
  fenced_ = true;
  out.push_back(Action{.kind = ActionKind::kUnpair});
  out.push_back(Action{.kind = ActionKind::kFence});
}

LegacyController::Heard LegacyController::Verdict(int64_t now) const {
  if (peer_.empty()) return Heard::kUnknown;
  int heard = 0;
  for (int64_t at : heard_at_) heard += now - at <= budget_ms_ ? 1 : 0;
  if (heard == kPathCount) return Heard::kAlive;
  return heard == 0 ? Heard::kDead : Heard::kDegraded;
}

Result<std::vector<Action>> LegacyController::Step(const Event& e) {
  Actions out;
  if (exited_) return out;
  switch (e.kind) {
    case EventKind::kStart:
      if (role_ == Role::kPrimary) Request(Waiting::kClaimRead, 2000, out);
      break;
    case EventKind::kTick:
      if (pending_ != 0 || e.now_ms < sleep_until_ || fenced_) break;
      if (role_ == Role::kPrimary) PrimaryLoop(e.now_ms, out);
      else SecondaryLoop(e.now_ms, out);
      break;
    case EventKind::kHeard:
      OnHeard(e);
      break;
    case EventKind::kHello:
      OnHello(e, out);
      break;
    case EventKind::kWelcome:
      OnWelcome(e, out);
      break;
    case EventKind::kCaptured:
      captured_ = std::max(captured_, e.epoch);
      Release(out);
      break;
    case EventKind::kCommitted:
      if (AcceptsCheckpoints() && e.peer_incarnation == peer_incarnation_) {
        committed_ = std::max(committed_, e.epoch);
        if (state_ == PairState::kSyncing) state_ = PairState::kProtected;
      }
      break;
    case EventKind::kAcked:
      if (role_ == Role::kPrimary && !peer_.empty() && e.peer_incarnation == peer_incarnation_) {
        acked_ = std::max(acked_, e.epoch);
        Release(out);
      }
      break;
    case EventKind::kArbiterReply:
      if (e.request == pending_ && pending_ != 0) OnReply(e, out);
      break;
    case EventKind::kLocalVmDied:
      exited_ = true;  // the agent fails with its QEMU
      break;
    case EventKind::kGoodbyeAcked:
      break;
    case EventKind::kStopRequested:
    case EventKind::kPromoteRequested:
    case EventKind::kStepDownRequested:
      return OnOperator(e);
  }
  return out;
}

void LegacyController::OnHeard(const Event& e) {
  if (peer_.empty() || e.peer_incarnation != peer_incarnation_) return;
  heard_at_[static_cast<int>(e.path)] = e.now_ms;
  if (role_ == Role::kSecondary && e.peer_says == PeerSays::kGoodbye && e.path == Path::kReplication &&
      state_ != PairState::kPromoted) {
    waiting_for_primary_ = true;  // "keeping the standby, not promoting" — but still able to take over
  }
}

void LegacyController::OnWelcome(const Event& e, Actions& out) {
  if (role_ != Role::kSecondary || !peer_.empty() || promoted_once_) return;
  peer_ = e.peer;
  peer_incarnation_ = e.peer_incarnation;
  heard_at_.fill(e.now_ms);
  state_ = PairState::kSyncing;
  record_revision_ = 0;
  Request(Waiting::kHelloRead, 2000, out);
}

void LegacyController::OnHello(const Event& e, Actions& out) {
  if (fenced_) return;
  if (role_ == Role::kPrimary && claimed_ && peer_.empty() && state_ == PairState::kSyncing) {
    peer_ = e.peer;
    peer_incarnation_ = e.peer_incarnation;
    heard_at_.fill(e.now_ms);
    out.push_back(Action{.kind = ActionKind::kPair, .peer = peer_, .peer_incarnation = peer_incarnation_,
                         .revision = record_revision_});
  } else if ((role_ == Role::kSecondary && state_ == PairState::kPromoted) ||
             (role_ == Role::kPrimary && state_ == PairState::kUnprotected && unprotected_output_)) {
    // Re-protection: the adopted PrimaryAgent claims the record from the promoted VM.
    candidate_ = e.peer;
    candidate_incarnation_ = e.peer_incarnation;
    role_ = Role::kPrimary;
    state_ = PairState::kReprotecting;
    unprotected_output_ = false;
    claimed_ = false;
    peer_.clear();
    acked_ = released_;
    Request(Waiting::kClaimRead, 2000, out);
  }
}

Result<std::vector<Action>> LegacyController::OnOperator(const Event& e) {
  Actions out;
  switch (e.kind) {
    case EventKind::kStopRequested:
      if (fenced_) return Status::FailedPrecondition("fenced");
      out.push_back(Action{.kind = ActionKind::kStopVm});
      if (!peer_.empty()) out.push_back(Action{.kind = ActionKind::kSendGoodbye, .peer = peer_});
      fenced_ = true;  // nothing is released any more
      if (role_ == Role::kPrimary) {
        pending_ = 0;
        Request(Waiting::kStopRead, 1000, out);  // MarkRecordStopped, best effort
      } else {
        exited_ = true;
      }
      return out;
    case EventKind::kPromoteRequested:
      if (role_ != Role::kSecondary || committed_ == 0 || state_ == PairState::kPromoted) {
        return Status::FailedPrecondition("no standby to promote");
      }
      promotion_requested_ = true;
      return out;
    case EventKind::kStepDownRequested:
      if (role_ != Role::kPrimary || state_ != PairState::kProtected || fenced_) {
        return Status::FailedPrecondition("only a protected primary can step down");
      }
      FenceSelf(out);
      return out;
    default:
      return out;
  }
}

void LegacyController::OnReply(const Event& e, Actions& out) {
  pending_ = 0;
  const bool ok = e.answer == ArbiterAnswer::kRecord || e.answer == ArbiterAnswer::kWon;
  const OwnershipRecord& r = e.record;
  const Waiting was = waiting_;
  waiting_ = Waiting::kNone;
  switch (was) {
    case Waiting::kClaimRead:
    case Waiting::kClaimCas:
    case Waiting::kClaimReread:
      OnClaimReply(was, e, out);
      return;
    case Waiting::kHelloRead:
      if (ok && r.owner == peer_) record_revision_ = r.revision;
      return;
    case Waiting::kCheckRead:
      OnCheckReply(e, out);
      return;
    case Waiting::kTakeoverRead:
      if (ok && r.owner == peer_) record_revision_ = r.revision;  // whatever the mode
      Request(Waiting::kContendCas, 1000, out, true, record_revision_, RecordMode::kPromoted);
      return;
    case Waiting::kContendCas:
      OnContendReply(e, out);
      return;
    case Waiting::kStopRead:
      if (ok && r.owner == me_) {
        Request(Waiting::kStopCas, 1000, out, true, r.revision, RecordMode::kStopped);
      } else {
        exited_ = true;
      }
      return;
    case Waiting::kStopCas:
      exited_ = true;
      return;
    case Waiting::kNone:
      return;
  }
}

// CheckRecordStillOurs / CheckRecordStillPrimary: fence unless the record is as we left it.
void LegacyController::OnCheckReply(const Event& e, Actions& out) {
  const bool ok = e.answer == ArbiterAnswer::kRecord || e.answer == ArbiterAnswer::kWon;
  const OwnershipRecord& r = e.record;
  if (ok) {
    bool fine = role_ == Role::kPrimary ? (r.owner == me_ && r.revision == record_revision_)
                                        : (r.owner == peer_ && r.revision == record_revision_);
    if (!fine) {
      FenceSelf(out);
      return;
    }
  }
  AfterCheck(e.now_ms, out);
}

// The contended swap of a takeover: the primary goes unprotected, the secondary promotes.
void LegacyController::OnContendReply(const Event& e, Actions& out) {
  if (e.answer == ArbiterAnswer::kWon) {
    if (role_ == Role::kPrimary) {
      unprotected_output_ = true;  // shipper_->GoUnprotected()
      Set(PairEvent::kRecordWon);
      out.push_back(Action{.kind = ActionKind::kUnpair});
      out.push_back(Action{.kind = ActionKind::kGoUnprotected});
      peer_.clear();
      Release(out);
    } else {
      state_ = PairState::kPromoted;
      promoted_once_ = true;
      out.push_back(Action{.kind = ActionKind::kUnpair});
      out.push_back(Action{.kind = ActionKind::kPromote, .epoch = committed_});
      peer_.clear();
      captured_ = std::max(captured_, committed_);
      unprotected_output_ = true;
      Release(out);
    }
  } else if (e.answer == ArbiterAnswer::kLost) {
    FenceSelf(out);
  } else {
    if (role_ == Role::kPrimary) Set(PairEvent::kArbiterUnreachable);
    sleep_until_ = e.now_ms + 50;
    if (role_ == Role::kSecondary && Verdict(e.now_ms) != Heard::kDead) {
      state_ = PairState::kProtected;  // "heard again before the arbiter decided"
    }
  }
}

// ClaimOwnership, for a fresh primary and for the adopted one of a re-protection.
void LegacyController::OnClaimReply(Waiting was, const Event& e, Actions& out) {
  const bool ok = e.answer == ArbiterAnswer::kRecord || e.answer == ArbiterAnswer::kWon;
  const OwnershipRecord& r = e.record;
  switch (was) {
    case Waiting::kClaimRead: {
      if (!ok) {
        exited_ = state_ != PairState::kReprotecting;  // start failed; a re-protection gives up
        if (!exited_) state_ = PairState::kUnprotected, unprotected_output_ = true;
        return;
      }
      bool adopted = state_ == PairState::kReprotecting;
      bool clean = r.revision == 0 || r.mode == "stopped" ||
                   (adopted && r.owner == me_ && (r.mode == "promoted" || r.mode == "unprotected"));
      if ((r.revision != 0 && r.owner != me_) || !clean) {
        exited_ = true;
        return;
      }
      Request(Waiting::kClaimCas, 2000, out, true, r.revision, RecordMode::kProtected);
      return;
    }
    case Waiting::kClaimCas:
      if (e.answer == ArbiterAnswer::kWon) {
        Request(Waiting::kClaimReread, 2000, out);
      } else if (e.answer == ArbiterAnswer::kLost) {
        Request(Waiting::kClaimRead, 2000, out);
      } else if (state_ == PairState::kReprotecting) {
        state_ = PairState::kUnprotected, unprotected_output_ = true;
      } else {
        exited_ = true;
      }
      return;
    case Waiting::kClaimReread:
      if (!ok || r.owner != me_) {
        if (!ok) exited_ = true;
        else Request(Waiting::kClaimRead, 2000, out);
        return;
      }
      record_revision_ = r.revision;
      claimed_ = true;
      heard_at_.fill(e.now_ms);
      if (state_ == PairState::kReprotecting) {
        peer_ = candidate_;
        peer_incarnation_ = candidate_incarnation_;
        heard_at_.fill(e.now_ms);
        out.push_back(Action{.kind = ActionKind::kPair, .peer = peer_, .peer_incarnation = peer_incarnation_,
                             .revision = record_revision_});
      }
      return;
    default:
      return;
  }
}

void LegacyController::PrimaryLoop(int64_t now, Actions& out) {
  if (!claimed_) return;
  if ((state_ == PairState::kSyncing && acked_ >= 1 && !peer_.empty())) Set(PairEvent::kSyncComplete);
  if (state_ == PairState::kReprotecting && acked_ > released_) Set(PairEvent::kReprotected);
  if (state_ == PairState::kUnprotected || state_ == PairState::kFenced) return;
  Heard verdict = Verdict(now);
  if (peer_.empty() && now - heard_at_[0] > budget_ms_) verdict = Heard::kDead;  // no secondary ever came
  if (verdict != last_verdict_) {
    if (verdict == Heard::kAlive && last_verdict_ != Heard::kUnknown) Set(PairEvent::kPathsRestored);
    else if (verdict == Heard::kDegraded) Set(PairEvent::kPathLost);
    last_verdict_ = verdict;
  }
  if (verdict != Heard::kAlive && verdict != Heard::kUnknown && now >= next_check_) {
    next_check_ = now + 250;
    Request(Waiting::kCheckRead, 200, out);  // CheckRecordStillOurs
    return;
  }
  AfterCheck(now, out);
}

void LegacyController::AfterCheck(int64_t now, Actions& out) {
  Heard verdict = Verdict(now);
  if (role_ == Role::kSecondary) {
    if (verdict == Heard::kDead || promotion_requested_) TakeOver(out);
    return;
  }
  if (peer_.empty() && now - heard_at_[0] > budget_ms_) verdict = Heard::kDead;
  if (verdict != Heard::kDead) {
    dead_since_ = -1;
    return;
  }
  if (dead_since_ < 0) dead_since_ = now;
  bool syncing = state_ == PairState::kSyncing || state_ == PairState::kReprotecting;
  if (syncing && now - dead_since_ < sync_grace_ms_) return;
  if (state_ != PairState::kFailingOver) Set(PairEvent::kPeerDead);
  // A re-protecting primary is now "unprotected" before any swap (pair_state.cc:70); the
  // loop above skips unprotected states, so this is the only attempt.
  Request(Waiting::kContendCas, 1000, out, true, record_revision_, RecordMode::kUnprotected);
}

void LegacyController::SecondaryLoop(int64_t now, Actions& out) {
  if (committed_ == 0 || state_ == PairState::kPromoted || peer_.empty()) return;
  Heard verdict = Verdict(now);
  bool healthy = verdict == Heard::kAlive;
  if (state_ == PairState::kProtected && !healthy) state_ = PairState::kDegraded;
  if (state_ == PairState::kDegraded && healthy) state_ = PairState::kProtected;
  if (!healthy && record_revision_ != 0 && now >= next_check_) {  // CheckRecordStillPrimary
    next_check_ = now + 250;
    Request(Waiting::kCheckRead, 200, out);
    return;
  }
  AfterCheck(now, out);
}

void LegacyController::TakeOver(Actions& out) {
  promotion_requested_ = false;
  state_ = PairState::kFailingOver;
  if (record_revision_ == 0) {
    Request(Waiting::kTakeoverRead, 1000, out);
    return;
  }
  Request(Waiting::kContendCas, 1000, out, true, record_revision_, RecordMode::kPromoted);
}

}  // namespace understudy::failover::sim
