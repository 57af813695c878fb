#include "failover/pair_controller.h"

#include <algorithm>
#include <utility>

namespace understudy::failover {

std::string_view RecordModeName(RecordMode mode) {
  switch (mode) {
    case RecordMode::kAbsent: return "";
    case RecordMode::kProtected: return "protected";
    case RecordMode::kUnprotected: return "unprotected";
    case RecordMode::kPromoted: return "promoted";
    case RecordMode::kStopped: return "stopped";
    case RecordMode::kOther: return "other";
  }
  return "other";
}

RecordMode ParseRecordMode(std::string_view mode) {
  if (mode.empty()) return RecordMode::kAbsent;
  if (mode == "protected") return RecordMode::kProtected;
  if (mode == "unprotected") return RecordMode::kUnprotected;
  if (mode == "promoted") return RecordMode::kPromoted;
  if (mode == "stopped") return RecordMode::kStopped;
  return RecordMode::kOther;
}

std::string_view ControllerStateName(ControllerState state) {
  switch (state) {
    case ControllerState::kClaiming: return "claiming";
    case ControllerState::kRefused: return "refused";
    case ControllerState::kJoining: return "joining";
    case ControllerState::kSyncing: return "syncing";
    case ControllerState::kProtected: return "protected";
    case ControllerState::kDegraded: return "degraded";
    case ControllerState::kContending: return "contending";
    case ControllerState::kUnprotected: return "unprotected";
    case ControllerState::kPromoted: return "promoted";
    case ControllerState::kReprotecting: return "re-protecting";
    case ControllerState::kStopping: return "stopping";
    case ControllerState::kStopped: return "stopped";
    case ControllerState::kStoodDown: return "stood-down";
    case ControllerState::kFenced: return "fenced";
  }
  return "unknown";
}

std::string ActionName(const Action& action) {
  switch (action.kind) {
    case ActionKind::kReleaseUpTo: return "release<=" + std::to_string(action.epoch);
    case ActionKind::kReadRecord: return "read#" + std::to_string(action.request);
    case ActionKind::kCompareAndSwap:
      return "cas#" + std::to_string(action.request) + "(" + std::to_string(action.expected_revision) + "->" +
             action.owner + "/" + std::string(RecordModeName(action.mode)) + ")";
    case ActionKind::kPair: return "pair(" + action.peer + "@" + std::to_string(action.revision) + ")";
    case ActionKind::kUnpair: return "unpair";
    case ActionKind::kPromote: return "promote";
    case ActionKind::kGoUnprotected: return "go-unprotected";
    case ActionKind::kFence: return "fence";
    case ActionKind::kStopVm: return "stop-vm";
    case ActionKind::kSendGoodbye: return "send-goodbye";
    case ActionKind::kAckGoodbye: return "ack-goodbye";
  }
  return "?";
}

Result<PairController> PairController::Create(PairControllerOptions options) {
  if (options.me.empty()) return Status::InvalidArgument("the pair controller needs this agent's name");
  if (!options.has_arbiter && !options.single_host_without_arbiter) {
    return Status::InvalidArgument(
        "no arbiter configured: without one both sides of a partition can take the VM (split brain); set "
        "failover.arbiter to an etcd endpoint, or \"none\" on a single host where every address is loopback");
  }
  if (options.budget_ms <= 0 || options.retry_ms <= 0 || options.watch_interval_ms <= 0) {
    return Status::InvalidArgument("pair controller budgets must be positive");
  }
  return PairController(std::move(options));
}

PairController::PairController(PairControllerOptions options)
    : options_(std::move(options)),
      state_(options_.role == Role::kPrimary ? ControllerState::kClaiming : ControllerState::kJoining) {}

bool PairController::serving() const {
  switch (state_) {
    case ControllerState::kUnprotected:
    case ControllerState::kPromoted:
      return true;
    case ControllerState::kSyncing:
    case ControllerState::kProtected:
    case ControllerState::kDegraded:
    case ControllerState::kContending:
    case ControllerState::kReprotecting:
      return options_.role == Role::kPrimary;
    default:
      return false;
  }
}

void PairController::Enter(ControllerState next) { state_ = next; }

void PairController::Read(int64_t now, Actions& out) {
  if (pending_ != 0) {  // answered first; the answer's handler reads again if it must
    read_wanted_ = true;
    return;
  }
  read_wanted_ = false;
  next_read_at_ = now + options_.watch_interval_ms;
  pending_ = next_request_++;
  pending_is_cas_ = false;
  out.push_back(Action{.kind = ActionKind::kReadRecord, .request = pending_});
}

void PairController::Swap(uint64_t expected, RecordMode mode, Actions& out) {
  pending_ = next_request_++;
  pending_is_cas_ = true;
  pending_mode_ = mode;
  pending_expected_ = expected;
  out.push_back(Action{.kind = ActionKind::kCompareAndSwap,
                       .request = pending_,
                       .expected_revision = expected,
                       .owner = options_.me,
                       .mode = mode});
}

void PairController::Release(Actions& out) {
  uint64_t target = released_;
  bool alone = state_ == ControllerState::kUnprotected || state_ == ControllerState::kPromoted;
  bool holding = options_.role == Role::kPrimary &&
                 (state_ == ControllerState::kSyncing || state_ == ControllerState::kProtected ||
                  state_ == ControllerState::kDegraded || state_ == ControllerState::kContending ||
                  state_ == ControllerState::kReprotecting || state_ == ControllerState::kStopping);
  if (alone || (holding && options_.test_fault_for_test == TestFault::kReleaseBeforeAck)) {
    target = std::max(target, captured_);
  } else if (holding) {
    target = std::max(target, std::min(acked_, captured_));
  }
  if (target > released_) {
    released_ = target;
    out.push_back(Action{.kind = ActionKind::kReleaseUpTo, .epoch = target});
  }
}

void PairController::Fence(Actions& out) {
  Enter(ControllerState::kFenced);
  pending_ = 0;
  out.push_back(Action{.kind = ActionKind::kUnpair});
  out.push_back(Action{.kind = ActionKind::kFence});
}

bool PairController::AllPathsHeard(int64_t now) const {
  for (int64_t at : heard_at_) {
    if (now - at > options_.budget_ms) return false;
  }
  return true;
}

bool PairController::PeerSilent(int64_t now) const {
  int64_t patience = options_.budget_ms;
  if (state_ == ControllerState::kSyncing || state_ == ControllerState::kReprotecting) patience += options_.sync_grace_ms;
  if (!Paired()) return now - paired_at_ > patience;
  for (int64_t at : heard_at_) {
    if (now - at <= patience) return false;
  }
  return true;
}

bool PairController::PeerGone(int64_t now) const {
  // "Alone": the peer runs without us (then the record says so) or fenced itself (stepped down,
  // its VM died) and will never release again. Either way, contend: the record decides.
  if (Paired() && peer_says_ == PeerSays::kAlone) return true;
  return PeerSilent(now);
}

void PairController::BeginContending(int64_t now, Actions& out) {
  Enter(ControllerState::kContending);
  cas_sent_ = false;
  // The revision to swap must come from a read made now, after the peer went silent: one
  // remembered from earlier may belong to a record the peer has since changed.
  pending_ = 0;
  Read(now, out);
}

Result<std::vector<Action>> PairController::Step(const Event& e) {
  Actions out;
  switch (e.kind) {
    case EventKind::kStart: OnStart(e, out); break;
    case EventKind::kTick: OnTick(e, out); break;
    case EventKind::kHeard: OnHeard(e, out); break;
    case EventKind::kHello: OnHello(e, out); break;
    case EventKind::kWelcome:
      if (state_ == ControllerState::kJoining) {
        peer_ = e.peer;
        peer_incarnation_ = e.peer_incarnation;
        pairing_revision_ = e.revision;
        heard_at_.fill(e.now_ms);
        peer_says_ = PeerSays::kPaired;
        paired_at_ = e.now_ms;
        committed_ = 0;
        Enter(ControllerState::kSyncing);
      }
      break;
    case EventKind::kCaptured:
      captured_ = std::max(captured_, e.epoch);
      Release(out);
      break;
    case EventKind::kCommitted:
      if (options_.role == Role::kSecondary && Paired() && e.peer_incarnation == peer_incarnation_) {
        committed_ = std::max(committed_, e.epoch);
        if (state_ == ControllerState::kSyncing) Enter(ControllerState::kProtected);
      }
      break;
    case EventKind::kAcked:
      if (options_.role == Role::kPrimary && Paired() && e.peer_incarnation == peer_incarnation_) {
        acked_ = std::max(acked_, e.epoch);
        if (state_ == ControllerState::kSyncing) Enter(ControllerState::kProtected);
        Release(out);
      }
      break;
    case EventKind::kArbiterReply: OnArbiterReply(e, out); break;
    case EventKind::kLocalVmDied:
      if (state_ != ControllerState::kStopped && state_ != ControllerState::kFenced &&
          state_ != ControllerState::kRefused) {
        Fence(out);  // heartbeats now say "alone": the peer treats us as gone
      }
      break;
    case EventKind::kGoodbyeAcked:
      if (e.peer_incarnation == peer_incarnation_) goodbye_acked_ = true;
      break;
    case EventKind::kStopRequested:
    case EventKind::kPromoteRequested:
    case EventKind::kStepDownRequested:
      return OnOperator(e);
  }
  return out;
}

void PairController::OnStart(const Event& e, Actions& out) {
  paired_at_ = e.now_ms;
  if (options_.role == Role::kPrimary && state_ == ControllerState::kClaiming) Read(e.now_ms, out);
}

void PairController::OnHeard(const Event& e, Actions& out) {
  if (!Paired() || e.peer_incarnation != peer_incarnation_) return;  // another run of the peer
  heard_at_[static_cast<int>(e.path)] = e.now_ms;
  peer_says_ = e.peer_says;
  if (options_.role == Role::kSecondary && e.peer_says == PeerSays::kGoodbye) {
    switch (state_) {
      case ControllerState::kSyncing:
      case ControllerState::kProtected:
      case ControllerState::kDegraded:
      case ControllerState::kContending:
      case ControllerState::kStoodDown:
        // The primary stops the VM on purpose: this standby must never run it, whether or not
        // the primary can tell the arbiter. A takeover in flight is abandoned; if its swap
        // applied, the record names us, but we never promote.
        if (state_ != ControllerState::kStoodDown) {
          Enter(ControllerState::kStoodDown);
          pending_ = 0;
        }
        out.push_back(Action{.kind = ActionKind::kAckGoodbye, .peer = peer_, .peer_incarnation = peer_incarnation_});
        return;
      default:
        return;
    }
  }
}

void PairController::OnHello(const Event& e, Actions& out) {
  bool alone = state_ == ControllerState::kUnprotected || state_ == ControllerState::kPromoted;
  if (options_.role == Role::kPrimary && state_ == ControllerState::kSyncing && !Paired()) {
    peer_ = e.peer;
    peer_incarnation_ = e.peer_incarnation;
    heard_at_.fill(e.now_ms);
    peer_says_ = PeerSays::kPaired;
    paired_at_ = e.now_ms;
    out.push_back(Action{.kind = ActionKind::kPair,
                         .peer = peer_,
                         .peer_incarnation = peer_incarnation_,
                         .revision = pairing_revision_});
    return;
  }
  if (Paired() && e.peer == peer_ && e.peer_incarnation == peer_incarnation_ &&
      (state_ == ControllerState::kSyncing || state_ == ControllerState::kProtected ||
       state_ == ControllerState::kDegraded)) {
    // Our secondary asks again: it never got the welcome (the link broke). Say it again.
    out.push_back(Action{.kind = ActionKind::kPair,
                         .peer = peer_,
                         .peer_incarnation = peer_incarnation_,
                         .revision = pairing_revision_});
    return;
  }
  if (!alone) return;
  // Re-protection. From now on new output waits for the new secondary's acks; everything
  // released so far is in the VM's state before its first checkpoint.
  candidate_ = e.peer;
  candidate_incarnation_ = e.peer_incarnation;
  Enter(ControllerState::kReprotecting);
  options_.role = Role::kPrimary;
  acked_ = released_;
  cas_sent_ = false;
  paired_at_ = e.now_ms;
  Read(e.now_ms, out);
}

void PairController::OnTick(const Event& e, Actions& out) {
  const int64_t now = e.now_ms;
  if (read_wanted_ && pending_ == 0 && now >= next_read_at_) Read(now, out);
  switch (state_) {
    case ControllerState::kSyncing:
      if (options_.role == Role::kSecondary) {
        if (PeerSilent(now)) {  // no standby to take over with: wait for a primary again
          peer_.clear();
          Enter(ControllerState::kJoining);
          out.push_back(Action{.kind = ActionKind::kUnpair});
        }
        return;
      }
      if (PeerGone(now)) BeginContending(now, out);
      return;
    case ControllerState::kProtected:
    case ControllerState::kDegraded: {
      if (PeerGone(now)) {
        BeginContending(now, out);
        return;
      }
      bool whole = AllPathsHeard(now) && peer_says_ == PeerSays::kPaired;
      Enter(whole ? ControllerState::kProtected : ControllerState::kDegraded);
      // While not every path hears the peer, watch the record: the peer may have taken the
      // VM while we could not hear it. Reading only ever leads to stopping, never releasing.
      if (!whole && pending_ == 0 && now >= next_read_at_) Read(now, out);
      return;
    }
    case ControllerState::kStopping:
      if (pending_ == 0 && now >= next_read_at_) Read(now, out);
      return;
    default:
      return;
  }
}

void PairController::OnArbiterReply(const Event& e, Actions& out) {
  if (e.request == 0 || e.request != pending_) return;  // late or duplicated
  const bool was_cas = pending_is_cas_;
  pending_ = 0;
  const int64_t now = e.now_ms;
  switch (e.answer) {
    case ArbiterAnswer::kRecord:
      if (!was_cas) OnRecord(e.record, now, out);
      break;
    case ArbiterAnswer::kWon:
      if (was_cas) OnCasWon(e.record.revision, now, out);
      break;
    case ArbiterAnswer::kLost:
    case ArbiterAnswer::kUnknown:
      // "Lost" may be our own earlier write that timed out; "unknown" may have applied.
      // Either way only a read can tell.
      if (was_cas) cas_sent_ = true;
      next_read_at_ = now;
      Read(now, out);
      break;
    case ArbiterAnswer::kUnreachable:
      // Nothing decided. Try again later, with a fresh read.
      next_read_at_ = now + options_.retry_ms;
      read_wanted_ = true;
      break;
  }
  if (pending_ == 0 && read_wanted_ && now >= next_read_at_) Read(now, out);
}

void PairController::OnCasWon(uint64_t revision, int64_t now, Actions& out) {
  switch (state_) {
    case ControllerState::kClaiming:
    case ControllerState::kReprotecting:
      if (revision == 0) {  // won, but the new revision is unknown: learn it
        cas_sent_ = true;
        Read(now, out);
        return;
      }
      pairing_revision_ = revision;
      if (state_ == ControllerState::kReprotecting) {
        peer_ = candidate_;
        peer_incarnation_ = candidate_incarnation_;
        heard_at_.fill(now);
        peer_says_ = PeerSays::kPaired;
        out.push_back(Action{.kind = ActionKind::kPair,
                             .peer = peer_,
                             .peer_incarnation = peer_incarnation_,
                             .revision = pairing_revision_});
      }
      paired_at_ = now;
      Enter(ControllerState::kSyncing);
      return;
    case ControllerState::kContending:
      if (options_.role == Role::kPrimary) {
        Enter(ControllerState::kUnprotected);
        out.push_back(Action{.kind = ActionKind::kUnpair});
        peer_.clear();
        out.push_back(Action{.kind = ActionKind::kGoUnprotected});
        Release(out);
      } else {
        Enter(ControllerState::kPromoted);
        out.push_back(Action{.kind = ActionKind::kUnpair});
        peer_.clear();
        out.push_back(Action{.kind = ActionKind::kPromote, .epoch = committed_});
        // The standby's console already holds every committed epoch's output; the promoted
        // VM continues from there.
        captured_ = std::max(captured_, committed_);
        released_ = std::max(released_, acked_);
        Release(out);
      }
      return;
    case ControllerState::kStopping:
      Enter(ControllerState::kStopped);
      return;
    default:
      return;
  }
}

void PairController::OnRecord(const OwnershipRecord& record, int64_t now, Actions& out) {
  const RecordView view{ParseRecordMode(record.mode), record.revision, record.revision == 0,
                        record.revision != 0 && record.owner == options_.me,
                        record.revision != 0 && record.owner == peer_};
  switch (state_) {
    case ControllerState::kClaiming:
      if (view.mine && view.mode == RecordMode::kProtected && cas_sent_) {
        OnCasWon(view.revision, now, out);  // our claim applied; its answer was lost
      } else if (view.absent || view.mode == RecordMode::kStopped) {
        cas_sent_ = true;
        Swap(view.revision, RecordMode::kProtected, out);
      } else {
        // Another host runs the VM, or an earlier run here did not stop cleanly and its
        // secondary may be taking over: an operator decides.
        Enter(ControllerState::kRefused);
      }
      return;
    case ControllerState::kReprotecting:
      if (!view.mine) {
        Fence(out);
      } else if (view.mode == RecordMode::kProtected) {
        OnCasWon(view.revision, now, out);  // our swap applied (its answer was lost)
      } else {
        cas_sent_ = true;
        Swap(view.revision, RecordMode::kProtected, out);
      }
      return;
    case ControllerState::kProtected:
    case ControllerState::kDegraded:
      OnWatchedRecord(view, now, out);
      return;
    case ControllerState::kContending:
      if (options_.role == Role::kPrimary) {
        OnContendedRecordAsPrimary(view, now, out);
      } else {
        OnContendedRecordAsSecondary(view, now, out);
      }
      return;
    case ControllerState::kStopping:
      if (view.mine && view.mode != RecordMode::kStopped) {
        Swap(view.revision, RecordMode::kStopped, out);
      } else {
        // Marked (perhaps by our own swap whose answer was lost), or no longer ours.
        Enter(ControllerState::kStopped);
      }
      return;
    default:
      return;
  }
}

void PairController::OnWatchedRecord(const RecordView& view, int64_t now, Actions& out) {
  if (options_.role == Role::kPrimary) {
    if (!view.mine) Fence(out);  // ours whatever its revision; anyone else's: we lost it
    return;
  }
  if (view.mine && view.mode == RecordMode::kPromoted) {
    BeginContending(now, out);  // a swap of ours applied late: the read in contention promotes
  } else if (view.mode == RecordMode::kStopped) {
    Enter(ControllerState::kStoodDown);
  } else if (!IsOurPairing(view)) {
    Fence(out);  // the primary went unprotected or an operator moved the VM: stale standby
  }
}

bool PairController::IsOurPairing(const RecordView& view) const {
  if (options_.test_fault_for_test == TestFault::kSkipModeCheck) return view.peers;
  return view.peers && view.mode == RecordMode::kProtected && view.revision == pairing_revision_;
}

bool PairController::PeerBack(int64_t now) const {
  return AllPathsHeard(now) && peer_says_ == PeerSays::kPaired && !operator_promote_;
}

void PairController::OnContendedRecordAsPrimary(const RecordView& view, int64_t now, Actions& out) {
  if (view.mine && view.mode == RecordMode::kUnprotected) {
    OnCasWon(view.revision, now, out);
  } else if (view.mine && view.mode == RecordMode::kProtected) {
    if (PeerBack(now)) {  // a false alarm, and no swap of ours applied: carry on
      Enter(acked_ > 0 ? ControllerState::kProtected : ControllerState::kSyncing);
    } else {
      cas_sent_ = true;
      Swap(view.revision, RecordMode::kUnprotected, out);
    }
  } else {
    Fence(out);
  }
}

void PairController::OnContendedRecordAsSecondary(const RecordView& view, int64_t now, Actions& out) {
  const bool skip_mode = options_.test_fault_for_test == TestFault::kSkipModeCheck;
  if (view.mine && view.mode == RecordMode::kPromoted) {
    OnCasWon(view.revision, now, out);
  } else if (view.mode == RecordMode::kStopped && !skip_mode) {
    Enter(ControllerState::kStoodDown);
  } else if (IsOurPairing(view)) {
    if (PeerBack(now)) {
      Enter(ControllerState::kProtected);
    } else {
      cas_sent_ = true;
      Swap(view.revision, RecordMode::kPromoted, out);
    }
  } else {
    Fence(out);
  }
}

Result<std::vector<Action>> PairController::OnOperator(const Event& e) {
  Actions out;
  const std::string state(ControllerStateName(state_));
  switch (e.kind) {
    case EventKind::kStopRequested: {
      bool running = options_.role == Role::kPrimary
                         ? (state_ == ControllerState::kSyncing || state_ == ControllerState::kProtected ||
                            state_ == ControllerState::kDegraded || state_ == ControllerState::kContending ||
                            state_ == ControllerState::kUnprotected || state_ == ControllerState::kReprotecting)
                         : state_ == ControllerState::kPromoted;
      if (!running) return Status::FailedPrecondition("a clean stop needs the VM's owner; this side is " + state);
      Enter(ControllerState::kStopping);
      pending_ = 0;  // whatever was in flight, the record read below decides
      out.push_back(Action{.kind = ActionKind::kStopVm});
      if (Paired()) out.push_back(Action{.kind = ActionKind::kSendGoodbye, .peer = peer_});
      next_read_at_ = e.now_ms;
      Read(e.now_ms, out);
      return out;
    }
    case EventKind::kPromoteRequested:
      if (options_.role == Role::kSecondary &&
          (state_ == ControllerState::kContending || state_ == ControllerState::kPromoted)) {
        operator_promote_ = true;  // already under way (the primary stepped down) or done
        return out;
      }
      if (options_.role != Role::kSecondary ||
          (state_ != ControllerState::kProtected && state_ != ControllerState::kDegraded)) {
        return Status::FailedPrecondition("only a secondary holding a standby can promote; this side is " + state);
      }
      operator_promote_ = true;
      BeginContending(e.now_ms, out);
      return out;
    case EventKind::kStepDownRequested:
      if (options_.role != Role::kPrimary || state_ != ControllerState::kProtected) {
        return Status::FailedPrecondition("only a protected primary can step down; this side is " + state);
      }
      // The record is left alone: the secondary's promotion swaps it from the pairing revision.
      Fence(out);
      return out;
    default:
      return Status::Internal("not an operator request");
  }
}

}  // namespace understudy::failover
