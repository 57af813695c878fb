// PairController: the one place that decides, for either side of a protected pair, who owns
// the VM and which output may be released. failover/SAFETY.md argues it safe.
//
// It is a pure state machine in the style of etcd's raft `Step`: the caller feeds it events
// (heartbeats heard, checkpoints captured / committed / acked, arbiter answers, operator
// requests, the time) and carries out the actions it returns (release output up to an epoch,
// read the ownership record, compare-and-swap it, promote, fence, stop the VM, ...). Nothing
// inside reads a clock, opens a socket or starts a thread; time arrives as `now_ms` on every
// event. That makes it the same code in the agents and in the simulator (failover/sim/).
//
// Arbiter requests are asynchronous: each ReadRecord / CompareAndSwap action carries a request
// id, and the caller answers it with an kArbiterReply event naming that id. At most one
// request is outstanding; replies to other ids (late, duplicated) are ignored.
//
// Rules it enforces (SAFETY.md explains why each is needed):
//  * Output of epoch E is released only once E is acked, or once this side owns the record
//    as `unprotected` / `promoted` (a compare-and-swap it saw win, or a read showing it won).
//  * A compare-and-swap whose outcome is unknown (timed out) is resolved by reading the
//    record, never by guessing; so is a `lost` answer (it may be our own earlier write).
//  * A record whose owner is this side is ours, whatever its revision.
//  * The mode is always checked: a secondary never promotes over `stopped`, nor over a record
//    the primary owns in any mode but `protected` at the revision of this pairing.
//  * The revision a takeover swaps comes from a read made after the peer went silent.
//  * A clean goodbye from the primary makes the secondary stand down for good, whether or
//    not the arbiter could be told.
//
// Transitions (state: event/answer → next; anything not listed leaves the state alone):
//   claiming:      read absent|stopped → swap {me,protected}; won (or read {me,protected} after
//                  our swap) → syncing; read someone else's → refused
//   syncing (P):   hello → pair; first ack → protected; peer gone (budget + sync grace) → contending
//   joining (S):   welcome → syncing;  syncing (S): first commit → protected; peer silent → joining
//   protected ⇄ degraded: every path heard ⇄ some path silent (degraded reads the record every
//                  watch interval: P fences if another owns it; S fences unless it is its pairing's
//                  {P,protected,R}, stands down on stopped); peer gone → contending
//   contending:    always starts with a read. P: {me,protected} → swap → unprotected;
//                  {me,unprotected} → unprotected; other → fenced. S: {P,protected,R} → swap →
//                  promoted; {me,promoted} → promoted; stopped → stood-down; other → fenced.
//                  Lost / unknown → read; unreachable → read after retry_ms. Peer heard again on
//                  every path before any swap applied → back to protected.
//   unprotected | promoted: hello from a new agent → re-protecting (output held from now)
//   re-protecting: read {me,*} → swap {me,protected} → won → pair → syncing (as primary);
//                  someone else's record → fenced
//   any running state (owner): stop → stopping (VM stopped, goodbye) → record {me,stopped}
//                  (or no longer ours) → stopped
//   S protected|degraded|syncing|contending: goodbye heard → stood-down
//   P protected: step-down → fenced (record untouched);  local VM died → fenced
//
// Thread safety: none; one owner steps it.
#ifndef UNDERSTUDY_FAILOVER_PAIR_CONTROLLER_H_
#define UNDERSTUDY_FAILOVER_PAIR_CONTROLLER_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "failover/arbiter.h"
#include "failover/pair_state.h"

namespace understudy::failover {

// The modes of the ownership record (arbiter.h), as an enum.
enum class RecordMode { kAbsent, kProtected, kUnprotected, kPromoted, kStopped, kOther };
std::string_view RecordModeName(RecordMode mode);
RecordMode ParseRecordMode(std::string_view mode);

enum class ControllerState {
  kClaiming,      // primary at start: taking the record as {me, protected}
  kRefused,       // primary at start: the record belongs to another run (terminal)
  kJoining,       // secondary: no primary paired yet
  kSyncing,       // paired; the secondary has not committed a first checkpoint
  kProtected,     // paired, every path hears the peer, the secondary holds a standby
  kDegraded,      // paired, some path is silent (the record is watched)
  kContending,    // the peer is gone: taking the record (primary → unprotected, secondary → promoted)
  kUnprotected,   // primary owns the record as unprotected: releases without acks
  kPromoted,      // secondary owns the record as promoted: its standby runs the VM
  kReprotecting,  // the sole owner swaps the record to {me, protected} for a new secondary
  kStopping,      // clean stop: VM stopped, goodbye sent, record being marked stopped
  kStopped,       // clean stop done (terminal)
  kStoodDown,     // secondary: the primary said goodbye; never promotes (terminal)
  kFenced,        // lost the record: VM stopped / standby discarded (terminal)
};
std::string_view ControllerStateName(ControllerState state);

// The paths a peer is heard on. The replication link carries checkpoints and acks too.
inline constexpr int kPathCount = 3;
enum class Path { kReplication = 0, kHeartbeatA = 1, kHeartbeatB = 2 };

// What the peer says about itself in every heartbeat.
enum class PeerSays {
  kPaired,   // protecting / protected, as far as it knows
  kGoodbye,  // the primary is stopping the VM on purpose
  kAlone,    // it runs the VM without us, or it is fenced / stood down
};

enum class ArbiterAnswer {
  kRecord,       // a read succeeded: `record` holds the record (revision 0: absent)
  kWon,          // CAS applied; `record.revision` is the new revision when known (0: unknown)
  kLost,         // CAS not applied: the revision had moved
  kUnknown,      // timed out after the request may have reached the arbiter: outcome unknown
  kUnreachable,  // never reached the arbiter (refused, down): nothing was applied
};

enum class EventKind {
  kStart,            // the agent starts (primary: claim; secondary: join)
  kTick,             // time passes
  kHeard,            // something arrived from the peer on `path` (incarnation `peer_incarnation`)
  kHello,            // owner side: an agent `peer` (incarnation) asks to protect this VM
  kWelcome,          // secondary side: primary `peer` paired with us at record revision `revision`
  kCaptured,         // primary: checkpoint `epoch` captured (its output is held)
  kCommitted,        // secondary: checkpoint `epoch` committed
  kAcked,            // primary: the secondary acknowledged `epoch`
  kArbiterReply,     // answer to request `request`
  kLocalVmDied,      // our QEMU (or standby) died
  kGoodbyeAcked,     // primary: the secondary acknowledged our goodbye
  kStopRequested,    // operator: stop the VM cleanly (primary / owner)
  kPromoteRequested, // operator: promote the standby (secondary)
  kStepDownRequested // operator: stop being primary so the secondary can promote (failback)
};

struct Event {
  EventKind kind = EventKind::kTick;
  int64_t now_ms = 0;
  Path path = Path::kReplication;
  PeerSays peer_says = PeerSays::kPaired;
  uint64_t peer_incarnation = 0;
  std::string peer{};
  uint64_t epoch = 0;
  uint64_t revision = 0;
  uint64_t request = 0;
  ArbiterAnswer answer = ArbiterAnswer::kRecord;
  OwnershipRecord record{};

  static Event Of(EventKind kind, int64_t now_ms) {
    Event event;
    event.kind = kind;
    event.now_ms = now_ms;
    return event;
  }
};

enum class ActionKind {
  kReleaseUpTo,     // release held output of every epoch <= epoch
  kReadRecord,      // read the record; answer with request id
  kCompareAndSwap,  // CAS expecting `expected_revision`, writing {owner, mode}; answer with request id
  kPair,            // accept `peer` (incarnation) as the secondary; tell it `revision` (kWelcome)
  kUnpair,          // drop the current peer: ship nothing more to it, ignore its acks
  kPromote,         // secondary: run the standby from its last committed checkpoint
  kGoUnprotected,   // primary: from now on output needs no ack (a kReleaseUpTo follows)
  kFence,           // stop the VM / discard the standby; release nothing ever again
  kStopVm,          // clean stop: stop the guest (nothing more is produced)
  kSendGoodbye,     // tell the peer (on every path, until acked) that the stop is on purpose
  kAckGoodbye,      // secondary: acknowledge the primary's goodbye
};

struct Action {
  ActionKind kind;
  uint64_t epoch = 0;
  uint64_t request = 0;
  uint64_t expected_revision = 0;
  std::string owner{};
  RecordMode mode = RecordMode::kAbsent;
  std::string peer{};
  uint64_t peer_incarnation = 0;
  uint64_t revision = 0;
  int64_t timeout_ms = 0;  // arbiter requests: give up after this long (0: the caller's default)
};
std::string ActionName(const Action& action);

// Deliberate breakage, for the simulator's negative controls only.
enum class TestFault {
  kNone,
  kReleaseBeforeAck,   // release captured output at once, as if acked
  kSkipModeCheck,      // secondary promotes over any record its primary owns, like today's code
};

struct PairControllerOptions {
  Role role = Role::kPrimary;
  std::string me;            // this agent's name in the ownership record
  int64_t budget_ms = 150;   // silence on every path before the peer is gone
  int64_t sync_grace_ms = 2000;  // extra patience while the first image is in flight
  int64_t watch_interval_ms = 250;  // record reads while a path is silent
  int64_t retry_ms = 50;     // after an unreachable arbiter
  // Refused unless true: without an arbiter split brain is possible (SAFETY.md). Single-host
  // demos set `single_host_without_arbiter` instead, which the config allows only when every
  // address is loopback.
  bool has_arbiter = true;
  bool single_host_without_arbiter = false;
  TestFault test_fault_for_test = TestFault::kNone;
};

class PairController {
 public:
  // Fails (kInvalidArgument) for a config without an arbiter that is not single-host, or
  // without a name.
  static Result<PairController> Create(PairControllerOptions options);

  // Feeds one event; returns the actions to carry out, in order. Operator requests that the
  // current state forbids are refused with kFailedPrecondition naming the state; every other
  // event is accepted (an event that means nothing in this state returns no actions).
  Result<std::vector<Action>> Step(const Event& event);

  ControllerState state() const { return state_; }
  Role role() const { return options_.role; }
  // Highest epoch this side has told its caller to release.
  uint64_t released() const { return released_; }
  const std::string& peer() const { return peer_; }
  uint64_t peer_incarnation() const { return peer_incarnation_; }
  // True while this side may run the VM and release output (for status and the simulator).
  bool serving() const;

 private:
  explicit PairController(PairControllerOptions options);

  using Actions = std::vector<Action>;
  // One handler per group of states; each may change state_ and append actions.
  void OnStart(const Event& e, Actions& out);
  void OnTick(const Event& e, Actions& out);
  void OnHeard(const Event& e, Actions& out);
  void OnHello(const Event& e, Actions& out);
  void OnArbiterReply(const Event& e, Actions& out);
  // A record read, as the decisions below see it.
  struct RecordView {
    RecordMode mode;
    uint64_t revision;
    bool absent;
    bool mine;   // names this agent
    bool peers;  // names the peer of this pairing
  };
  void OnRecord(const OwnershipRecord& record, int64_t now, Actions& out);
  void OnWatchedRecord(const RecordView& view, int64_t now, Actions& out);
  void OnContendedRecordAsPrimary(const RecordView& view, int64_t now, Actions& out);
  void OnContendedRecordAsSecondary(const RecordView& view, int64_t now, Actions& out);
  bool IsOurPairing(const RecordView& view) const;
  bool PeerBack(int64_t now) const;
  void OnCasWon(uint64_t revision, int64_t now, Actions& out);
  Result<Actions> OnOperator(const Event& e);

  void Enter(ControllerState next);
  void Read(int64_t now, Actions& out);
  void Swap(uint64_t expected, RecordMode mode, Actions& out);
  void Release(Actions& out);
  void Fence(Actions& out);
  void BeginContending(int64_t now, Actions& out);
  bool Paired() const { return !peer_.empty(); }
  bool PeerSilent(int64_t now) const;
  bool AllPathsHeard(int64_t now) const;
  bool PeerGone(int64_t now) const;

  PairControllerOptions options_;
  ControllerState state_;
  // The peer this pairing is with, and when each path last heard it.
  std::string peer_;
  uint64_t peer_incarnation_ = 0;
  std::array<int64_t, kPathCount> heard_at_{};
  PeerSays peer_says_ = PeerSays::kPaired;
  int64_t paired_at_ = 0;
  // The record revision this pairing protects (written by the primary as {P, protected}).
  uint64_t pairing_revision_ = 0;
  // Epochs.
  uint64_t captured_ = 0;
  uint64_t acked_ = 0;
  uint64_t committed_ = 0;
  uint64_t released_ = 0;
  // The one outstanding arbiter request (0: none) and what it was.
  uint64_t next_request_ = 1;
  uint64_t pending_ = 0;
  bool pending_is_cas_ = false;
  RecordMode pending_mode_ = RecordMode::kAbsent;
  uint64_t pending_expected_ = 0;
  int64_t next_read_at_ = 0;  // do not read before (retry / watch pacing)
  bool read_wanted_ = false;  // a read is due once the pending request is answered
  bool cas_sent_ = false;  // this contention sent a CAS: a record naming us may be its result
  bool goodbye_acked_ = false;
  bool operator_promote_ = false;
  // Re-protection waiting for its swap: the agent to pair with once it wins.
  std::string candidate_;
  uint64_t candidate_incarnation_ = 0;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_PAIR_CONTROLLER_H_
