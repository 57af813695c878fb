// ProtectionSession: one pairing of the VM on a VmHost with one secondary — the channel and
// its CheckpointShipper, the COLO peer and the capture stage, the disk's initial copy, the
// checkpoint pacer. A host runs sessions one after another: re-protection after a failover,
// or after the primary ran unprotected, is a new session on the same host.
//
// The session decides nothing. It reports what it sees to the owner's PairController as
// events (through `post`): kHeard for every message from the secondary, kHello for its hello,
// kCaptured for every epoch captured, kAcked for every epoch acknowledged. It releases no
// output: the owner does, on the controller's kReleaseUpTo. Epoch numbers in events (and in
// the host's output buffers) are global: the session's epoch N is `epoch_base + N`, so the
// controller's numbering keeps growing across sessions.
//
// Lifecycle: Open (the channel is up; the shipper reads the secondary's hello) → Pair (the
// controller accepted it: our hello goes out with the pairing's record revision and the COLO
// migration starts) → GoUnprotected | Fence | Stop.
//
// Thread safety: all public methods are thread-safe; callbacks run on the session's threads.
#ifndef UNDERSTUDY_PRIMARY_PROTECTION_SESSION_H_
#define UNDERSTUDY_PRIMARY_PROTECTION_SESSION_H_

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "failover/pair_controller.h"
#include "monitoring/agent_metrics.h"
#include "primary/checkpoint_pacer.h"
#include "primary/capture_stage.h"
#include "primary/checkpoint_shipper.h"
#include "primary/colo_peer.h"
#include "primary/disk_pairing.h"
#include "primary/pause_phases.h"
#include "primary/primary_config.h"
#include "primary/test_checkpoint_hold.h"
#include "primary/vm_host.h"
#include "transport/channel.h"

namespace understudy::primary {

struct SessionContext {
  // How checkpoints are taken and shipped (interval, in-flight cap, byte caps, pacing, test
  // switches), and who we are (failover.name, vm.name).
  const PrimaryConfig* config = nullptr;
  // Where the secondary's UDP heartbeats should go, told in our hello.
  std::string heartbeat_address;
  // This pairing's number: the peer incarnation in every event it posts.
  uint64_t incarnation = 0;
  std::function<void(failover::Event)> post;
  // A byte cap was crossed, or the channel to the secondary failed: the pairing is over (the
  // owner's UDP heartbeats then say so too). Called on the shipper's threads, also while the
  // session stops: the owner ignores a session that is no longer its pairing.
  std::function<void()> on_pairing_over;
  // The secondary's hello also tells where it heartbeats from.
  std::function<void(const std::string& heartbeat_address)> on_peer_heartbeat_address;
  monitoring::AgentMetrics* metrics = nullptr;
  TestCheckpointHold* test_hold = nullptr;  // TEST ONLY; may be null
};

class ProtectionSession {
 public:
  // Starts the shipper over `channel` (it reads the secondary's hello and posts kHello).
  // `host` outlives the session.
  static std::unique_ptr<ProtectionSession> Open(VmHost& host, std::unique_ptr<transport::Channel> channel,
                                                 SessionContext context);
  ~ProtectionSession();

  // The controller paired with this secondary at record revision `revision`: sends our hello
  // and, the first time, starts checkpointing with epochs numbered after `epoch_base`.
  Status Pair(uint64_t revision, uint64_t epoch_base);
  // The controller dropped this secondary: its acks are ignored from now on, and the channel
  // goes silent (no heartbeats), so it does not mistake us for its primary any more.
  void Unpair() {
    paired_.store(false);
    fenced_.store(true);
  }
  // The owner runs the VM alone: checkpoints go on locally (each is released at once by the
  // controller), nothing is shipped.
  void GoUnprotected();
  // The owner lost the VM (or its guest died): nothing more is shipped, and the channel goes
  // silent (no heartbeats), so the secondary treats this side as gone.
  void Fence();
  // Ends checkpointing: QEMU leaves COLO (x-colo-lost-heartbeat) and runs on as a plain VM;
  // the session's COLO thread ends. Returns the last global epoch sealed.
  uint64_t EndCheckpointing();
  // Stops everything; with `goodbye`, the secondary is told the stop is on purpose (the
  // shipper sends what is queued and closes the channel cleanly).
  void Stop(bool goodbye);

  bool checkpointing() const { return colo_started_.load(); }
  uint64_t last_sealed_epoch() const { return last_sealed_.load(); }
  // Whether a secondary that committed `acked_epoch` (session numbering) could take over.
  bool SecondaryCanTakeOver() const;
  // The shipper lost the secondary (its channel failed, or the peer misbehaved): this pairing
  // can never ship again.
  bool lost() const;
  // Fills the status fields a session knows (epochs, pauses, shipping, disk, pacing).
  void AddStatus(nlohmann::json& status) const EXCLUDES(mu_);
  void SampleMetrics() const;

 private:
  ProtectionSession(VmHost& host, SessionContext context);
  void StartShipper(std::unique_ptr<transport::Channel> channel);
  ColoPeerOptions PeerOptions();
  std::unique_ptr<CheckpointPacer> MakePacer() const;
  Status StartCheckpointing();
  void ColoLoop();
  void Seal(EpochCapture& capture);
  void Submit(EpochCapture&& capture);
  void HeartbeatLoop();
  Status WaitForRoomOrStall(Deadline deadline);
  void RecordPause(const CheckpointTiming& timing) EXCLUDES(mu_);
  void OnAcked(uint64_t epoch, std::chrono::duration<double> since_stop) EXCLUDES(mu_);
  std::string PairingDefinitionJson() const;
  failover::Event MakeEvent(failover::EventKind kind) const;
  nlohmann::json PacingJson() const;

  VmHost& host_;
  const SessionContext context_;
  const PrimaryConfig& config_;
  DiskPairing disk_;
  std::unique_ptr<CheckpointPacer> pacer_;
  std::unique_ptr<CheckpointShipper> shipper_;  // set in Open, before any thread reads it
  std::unique_ptr<CaptureStage> capture_;       // set before colo_thread_ starts
  std::unique_ptr<ColoPeer> peer_;              // set before colo_thread_ starts
  std::atomic<bool> paired_{false};
  std::atomic<bool> over_cap_{false};
  std::atomic<bool> fenced_{false};
  std::atomic<bool> colo_started_{false};
  std::atomic<bool> ending_{false};   // checkpointing ends on purpose
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> epoch_base_{0};
  std::atomic<uint64_t> last_sealed_{0};
  std::atomic<uint64_t> acked_{0};  // session numbering
  std::thread heartbeat_thread_;
  std::thread colo_thread_;

  mutable Mutex mu_;
  std::vector<double> pauses_ms_ GUARDED_BY(mu_);   // newest last
  std::vector<double> commits_ms_ GUARDED_BY(mu_);  // stop → ack, newest last
  PausePhases pause_phases_ GUARDED_BY(mu_);
  uint64_t checkpoints_ GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point started_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_pause_start_;  // COLO peer's thread only
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PROTECTION_SESSION_H_
