// VmOwner: what the owner of a running VM does for its PairController — on the first primary
// (primary/primary_agent.h) and on a secondary after its standby was promoted
// (secondary/secondary_agent.h hands its VmHost here). It runs the host's protection
// sessions, one pairing at a time, and carries out the controller's owner actions:
//   kPair          start (or greet again) the session of the secondary the controller chose
//   kUnpair        ignore that secondary's acks from now on
//   kReleaseUpTo   release the held output of every epoch <= E — the only path that releases
//   kGoUnprotected run alone: checkpoints continue locally and are released as captured
//                  (a takeover: understudy_failovers_total counts it)
//   kFence         stop the guest; nothing more is ever released here
//   kStopVm        a clean stop: checkpoints end, the guest stops
//   kSendGoodbye   tell the secondary the stop is on purpose
// and it feeds the controller what it sees: kHello / kHeard / kCaptured / kAcked from the
// sessions, kHeard from each UDP heartbeat path (failover/heartbeat_paths.h). While the VM
// runs alone it dials the configured secondary address now and then: a secondary that
// answers is offered to the controller (kHello), which re-protects through the same kPair.
//
// While alone with no session checkpointing (a promoted standby before re-protection), the
// owner seals the held output itself every few milliseconds as the next epoch and reports it
// captured: the controller then releases it like any other epoch.
//
// Thread safety: Carry on the controller's driver thread; the rest from any thread.
#ifndef UNDERSTUDY_PRIMARY_VM_OWNER_H_
#define UNDERSTUDY_PRIMARY_VM_OWNER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "failover/heartbeat_paths.h"
#include "failover/pair_controller.h"
#include "monitoring/agent_metrics.h"
#include "primary/primary_config.h"
#include "primary/protection_session.h"
#include "primary/test_checkpoint_hold.h"
#include "primary/vm_host.h"
#include "transport/channel.h"

namespace understudy::primary {

struct OwnerOptions {
  // Sessions' settings and this agent's identity; `secondary_uri` + `channel`: where a new
  // secondary is dialled while the VM runs alone (empty: never).
  PrimaryConfig config;
  // The role the metrics name ("primary", or "secondary" for a promoted standby).
  std::string role = "primary";
  TestCheckpointHold* test_hold = nullptr;  // TEST ONLY; may be null
  // The first pairing's incarnation (then one more per new secondary). A promoted secondary's
  // controller already knew the old primary under low numbers: its new secondaries start
  // above them, so nothing the old pairing left queued can pass for the new one.
  uint64_t first_incarnation = 1;
  // The owner's epochs are numbered after this one. A promoted secondary's controller has
  // released the old pairing's epochs up to it, and releases only higher numbers.
  uint64_t epochs_after = 0;
};

class VmOwner {
 public:
  // Owns `host` from now on. `post` feeds the controller (ControllerDriver::Post). `alone`:
  // the VM already runs without a secondary (a promoted standby). `first_secondary`, when
  // set, is offered before the owner dials anyone itself (one connection, not two).
  static Result<std::unique_ptr<VmOwner>> Start(std::unique_ptr<VmHost> host, OwnerOptions options,
                                                std::function<void(failover::Event)> post, bool alone,
                                                std::unique_ptr<transport::Channel> first_secondary = nullptr);
  ~VmOwner();
  VmOwner(const VmOwner&) = delete;
  VmOwner& operator=(const VmOwner&) = delete;

  // A channel to a secondary is up: a session reads its hello and offers it (kHello).
  void Offer(std::unique_ptr<transport::Channel> channel) EXCLUDES(mu_);
  // Carries out one owner action (see the top of this file); any other kind is ignored.
  // Drops every action once Shutdown began.
  void Carry(const failover::Action& action) EXCLUDES(mu_);
  // Ends every session (no goodbye) and the owner's threads. Idempotent.
  void Shutdown() EXCLUDES(mu_);

  VmHost& host() { return *host_; }
  monitoring::AgentMetrics& metrics() { return *metrics_; }
  // The host's and the current session's status fields.
  nlohmann::json StatusJson() const EXCLUDES(mu_);
  // Whether the current session's secondary holds the whole VM (image and disk).
  bool SecondaryCanTakeOver() const EXCLUDES(mu_);

 private:
  VmOwner(std::unique_ptr<VmHost> host, OwnerOptions options, std::function<void(failover::Event)> post);
  Status StartHeartbeat();
  void OnHeartbeat(failover::Path path);  // a heartbeat path's thread
  // The peer gave a sign of life (a heartbeat path or its session heard it).
  void NoteHeard();
  // For understudy_failover_duration_seconds: since the controller noticed the peer's silence
  // (its last sign of life a budget ago), 0 if it was heard since (a byte cap ended the pairing).
  double SecondsSinceNoticed() const;
  void OnSessionEvent(failover::Event event) EXCLUDES(mu_);
  void Pair(const failover::Action& action) EXCLUDES(mu_);
  // Ends the pairing of session `incarnation` when it is still this owner's running pairing:
  // every path then tells the controller the peer is "alone", so the record decides, the VM
  // runs alone if this side keeps it, and the redial loop offers a secondary again.
  void EndPairing(uint64_t incarnation) EXCLUDES(mu_);
  void WithSession(const std::function<void(ProtectionSession&)>& use) EXCLUDES(mu_);
  void SealLoop();
  void SealAlone() EXCLUDES(mu_);
  void RedialLoop();
  void Retire(std::unique_ptr<ProtectionSession> session);

  const OwnerOptions options_;
  const std::function<void(failover::Event)> post_;
  std::unique_ptr<VmHost> host_;
  std::unique_ptr<monitoring::AgentMetrics> metrics_;
  std::unique_ptr<failover::HeartbeatPaths> heartbeat_;  // set in Start, before any thread reads it
  std::atomic<uint64_t> paired_incarnation_{0};
  std::atomic<uint64_t> record_revision_{0};  // of the current pairing, as the controller paired
  // The pairing (its incarnation) a byte cap or a failed channel ended: while it is the paired
  // one, every path tells the controller the peer is gone ("alone"), since the secondary
  // itself may be alive and well. 0: none.
  std::atomic<uint64_t> over_incarnation_{0};
  std::atomic<int64_t> last_heard_ns_{0};  // steady_clock, when the peer last gave a sign of life
  std::atomic<bool> stopping_{false};
  std::thread seal_thread_;
  std::thread redial_thread_;

  mutable Mutex mu_;
  std::shared_ptr<ProtectionSession> session_ GUARDED_BY(mu_);  // the pairing, paired or not yet
  std::shared_ptr<ProtectionSession> offered_ GUARDED_BY(mu_);  // a new secondary awaiting kPair
  uint64_t next_incarnation_ GUARDED_BY(mu_);
  uint64_t offered_incarnation_ GUARDED_BY(mu_) = 0;
  uint64_t session_incarnation_ GUARDED_BY(mu_) = 0;
  bool alone_ GUARDED_BY(mu_) = false;        // runs the VM without a secondary
  bool seal_paused_ GUARDED_BY(mu_) = false;  // a new pairing is being set up
  bool done_ GUARDED_BY(mu_) = false;         // fenced or stopped: nothing more happens
  uint64_t sealed_epoch_ GUARDED_BY(mu_);     // the last epoch the owner sealed itself
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_VM_OWNER_H_
