// LegacyController: today's (377b333) failover decisions, ported as they are, so that the
// simulator can show each hole of issue 15 on them. Used only by tests; never by an agent.
//
// What is modelled, and where it comes from:
//  * primary: ClaimOwnership (claim from a read; the revision read after the won swap is
//    remembered), FailoverLoop (verdict → failover::NextState events, CheckRecordStillOurs
//    every 250 ms while a path is silent — fencing when the revision differs even if we are
//    the owner —, ContendForOwnership with the remembered revision, every error read as
//    "unreachable", the sync grace), StepDown, the clean stop (one goodbye on the channel,
//    MarkRecordStopped once, best effort, then exit), and the re-protecting primary whose
//    kPeerDead goes straight to unprotected before its swap.
//  * secondary: OnHello (revision kept only if the read within 2 s names the primary),
//    WatchPeer / CheckRecordStillPrimary (nothing while the revision is 0), TakeOver (a
//    revision read later is adopted whatever the mode), goodbye → waiting-for-primary (still
//    able to take over).
//  * arbiter "none": every read returns this agent's own record; every swap wins.
// The real code is synchronous: while it waits for the arbiter, its loop waits. So does this.
//
// Thread safety: none.
#ifndef UNDERSTUDY_FAILOVER_SIM_LEGACY_CONTROLLER_H_
#define UNDERSTUDY_FAILOVER_SIM_LEGACY_CONTROLLER_H_

#include <array>
#include <string>

#include "failover/pair_state.h"
#include "failover/sim/brain.h"

namespace understudy::failover::sim {

class LegacyController : public Brain {
 public:
  LegacyController(Role role, std::string me, int64_t budget_ms, int64_t sync_grace_ms);

  Result<std::vector<Action>> Step(const Event& event) override;
  bool Serving() const override;
  bool Joining() const override { return role_ == Role::kSecondary && peer_.empty() && !promoted_once_; }
  bool AcceptsCheckpoints() const override;
  bool Exited() const override { return exited_; }
  bool Terminal() const override { return state_ == PairState::kFenced || exited_; }
  PeerSays Says() const override { return PeerSays::kPaired; }  // today's heartbeats say nothing
  std::string StateName() const override;

 private:
  using Actions = std::vector<Action>;
  enum class Waiting { kNone, kClaimRead, kClaimCas, kClaimReread, kHelloRead, kCheckRead, kContendCas,
                       kTakeoverRead, kStopRead, kStopCas };
  void Set(PairEvent event);
  void Request(Waiting what, int64_t timeout_ms, Actions& out, bool cas = false, uint64_t expected = 0,
               RecordMode mode = RecordMode::kAbsent);
  void Release(Actions& out);
  void FenceSelf(Actions& out);
  void PrimaryLoop(int64_t now, Actions& out);
  void SecondaryLoop(int64_t now, Actions& out);
  void OnReply(const Event& e, Actions& out);
  void OnClaimReply(Waiting was, const Event& e, Actions& out);
  void OnCheckReply(const Event& e, Actions& out);
  void OnContendReply(const Event& e, Actions& out);
  void OnHeard(const Event& e);
  void OnWelcome(const Event& e, Actions& out);
  void OnHello(const Event& e, Actions& out);
  Result<std::vector<Action>> OnOperator(const Event& e);
  enum class Heard { kUnknown, kAlive, kDegraded, kDead };
  Heard Verdict(int64_t now) const;
  void AfterCheck(int64_t now, Actions& out);
  void TakeOver(Actions& out);

  Role role_;
  std::string me_;
  int64_t budget_ms_;
  int64_t sync_grace_ms_;
  PairState state_ = PairState::kSyncing;
  bool claimed_ = false;
  bool exited_ = false;
  bool fenced_ = false;               // FenceSelf ran: VM stopped, nothing released
  bool unprotected_output_ = false;   // shipper_->GoUnprotected() happened
  bool promoted_once_ = false;
  bool waiting_for_primary_ = false;  // secondary after a goodbye
  bool promotion_requested_ = false;
  std::string peer_;
  uint64_t peer_incarnation_ = 0;
  std::array<int64_t, kPathCount> heard_at_{};
  Heard last_verdict_ = Heard::kUnknown;
  int64_t dead_since_ = -1;
  int64_t next_check_ = 0;
  int64_t sleep_until_ = 0;
  uint64_t record_revision_ = 0;
  uint64_t captured_ = 0, acked_ = 0, committed_ = 0, released_ = 0;
  uint64_t next_request_ = 1;
  uint64_t pending_ = 0;
  Waiting waiting_ = Waiting::kNone;
  std::string candidate_;
  uint64_t candidate_incarnation_ = 0;
};

}  // namespace understudy::failover::sim

#endif  // UNDERSTUDY_FAILOVER_SIM_LEGACY_CONTROLLER_H_
