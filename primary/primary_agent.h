// PrimaryAgent: ft-primary's core. Runs the protected VM's QEMU, plays QEMU's COLO secondary
// on the migration socket, captures each checkpoint while the VM is stopped, and hands it to
// the CheckpointShipper; holds the guest's console output until its epoch is acknowledged.
//
// Lifecycle: kStarting (QEMU launched, waiting for the guest's first console output) →
// kRunning → kStopped (cleanly: the secondary was told goodbye) or kFailed (see last_error).
// While running, the pair's state machine (failover/pair_state.h) says where protection
// stands: syncing → protected ⇄ degraded → failing-over → unprotected | fenced. The move to
// unprotected happens only after winning the ownership record (failover/SAFETY.md).
//
// Thread safety: Run() on one thread; RequestStop() and StatusJson() from any.
#ifndef UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_
#define UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "console/released_log.h"
#include "failover/arbiter.h"
#include "failover/pair_state.h"
#include "failover/peer_monitor.h"
#include "failover/transition_log.h"
#include "monitoring/agent_metrics.h"
#include "monitoring/metrics_server.h"
#include "primary/checkpoint_pacer.h"
#include "primary/checkpoint_shipper.h"
#include "primary/colo_peer.h"
#include "disk/disk_server.h"
#include "disk/initial_copy.h"
#include "disk/lineage_record.h"
#include "network/frame_relay.h"
#include "primary/output_buffer.h"
#include "primary/pause_phases.h"
#include "primary/primary_config.h"
#include "primary/test_checkpoint_hold.h"
#include "qemu/qemu_process.h"

namespace prometheus {
class Registry;
}

namespace understudy::primary {

// A running VM that another component hands over to be protected: a promoted standby being
// re-protected by the agent that promoted it (secondary/secondary_agent.h). That component
// keeps owning the QEMU process, the console log and the servers around them.
struct AdoptedVm {
  qemu::QmpClient* qmp = nullptr;  // outlives the PrimaryAgent
  int qemu_pid = 0;
  UniqueFd serial;                      // the guest's COM1: output from here on is held until acked
  console::ReleasedLog* released = nullptr;  // acked output goes here, from its end() on
  std::unique_ptr<transport::Channel> channel;  // to the new secondary, already connected
  prometheus::Registry* metrics_registry = nullptr;  // the adopter's /metrics
  disk::DiskServer* disk = nullptr;  // the VM's disk, when it has one; outlives the PrimaryAgent
  // The VM's NIC, when it has one: the adopter's relay, whose guest frames this agent then
  // holds until acked and releases into `released_network`, a log the relay follows.
  network::FrameRelay* relay = nullptr;
  console::ReleasedLog* released_network = nullptr;
};

class PrimaryAgent {
 public:
  enum class State { kStarting, kRunning, kStopped, kFailed };

  explicit PrimaryAgent(PrimaryConfig config);
  // Protects an already running VM (see AdoptedVm). Serves no control or console socket of
  // its own: the adopting agent does, and shows this agent's StatusJson().
  PrimaryAgent(PrimaryConfig config, AdoptedVm adopted);
  ~PrimaryAgent();

  // Runs until RequestStop() (then says goodbye to the secondary and returns OK) or a fatal
  // error (returned).
  Status Run();
  void RequestStop();

  // A planned switchover (`ftctl failback`): stops the guest and fences this side for good,
  // without touching the ownership record, so the secondary's promotion — which `ftctl`
  // requests next — wins it. Output not yet acknowledged is never released here; the
  // promoted standby produces it again. kFailedPrecondition unless protected.
  Status StepDown();

  nlohmann::json StatusJson() const;

 private:
  class StreamConsumer;

  Status Start();
  Status Attach();
  Status WaitForBoot();
  qemu::QmpClient& qmp();  // of the launched or the attached QEMU
  Status ClaimOwnership();
  void MarkRecordStopped();
  // Protects the VM over `channel` until stopped, fenced or failed.
  Status ProtectLoop(std::unique_ptr<transport::Channel> channel);
  Status WaitForRoomOrStall(Deadline deadline);
  void HeartbeatLoop();
  void ProbeArbiterLoop();
  void FailoverLoop();
  void SetPairState(failover::PairEvent event);
  // Lost the ownership record: stop the guest and never release another unacked byte.
  void FenceSelf(const std::string& why);
  // While the secondary is not heard, checks now and then whether the record still names
  // this host (an operator, or a promoted secondary, may own it now); fences if not.
  void CheckRecordStillOurs();
  failover::PairState pair_state() const;
  // Unprotected: when a secondary answers at the configured address again, ends this COLO
  // session (QEMU runs on) and returns true; ProtectLoop then hands over.
  bool TryHandOverToNewSecondary();
  // Protects the running VM again through a fresh PrimaryAgent that adopts it (a new pairing:
  // new epochs, new output buffer, the disk resynchronised); runs until it stops.
  Status HandOverToNewSecondary();
  // Joins the guest's NIC to its tap (config_.network) through a relay that holds its frames.
  Status ConnectNetwork();
  bool SessionOver() const { return stop_requested_.load() || session_over_.load(); }
  void SerialLoop();
  // The disk writes of the epoch the VM just stopped for (epoch 1: the initial copy — all of
  // the disk, or what differs from the secondary's copy).
  void SealDisk(EpochCapture& capture);
  void StopForDisk(const Status& why);
  // Whether the secondary could run the VM, having committed up to `acked_epoch`: the initial
  // image, and the whole initial disk copy.
  bool SecondaryCanTakeOver(uint64_t acked_epoch) const;
  // The machine as the secondary builds its standby: vm_ with this pairing's disk lineage.
  std::string PairingDefinitionJson() const;
  disk::DiskServer* disk() const { return adopted_ ? adopted_->disk : disk_server_.get(); }
  network::FrameRelay* relay() const { return adopted_ ? adopted_->relay : relay_.get(); }
  console::ReleasedLog& released_network() { return adopted_ && adopted_->released_network ? *adopted_->released_network : released_network_; }
  // Reads whatever the guest's serial socket holds right now into the console buffer;
  // returns how many bytes.
  size_t DrainSerial();
  // Output-triggered checkpoints (primary/checkpoint_pacer.h): held output was appended.
  // Cheap; called from the relay's, the serial reader's and the disk server's threads.
  void NoteOutputHeld() {
    if (pacer_) pacer_->OutputHeld();
  }
  std::unique_ptr<CheckpointPacer> MakePacer();
  nlohmann::json PacingJson() const;
  void SetState(State state);
  void RecordPause(const CheckpointTiming& timing);

  // TEST ONLY: with config_.test_control_commands, the control commands it adds hold the VM
  // stopped at a chosen checkpoint; otherwise it is never armed.
  std::map<std::string, control::Handler> WithTestControlCommands(std::map<std::string, control::Handler> handlers);
  TestCheckpointHold test_hold_;

  const PrimaryConfig config_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> session_over_{false};  // this agent's COLO session ended for a hand-over
  std::unique_ptr<transport::Channel> handover_channel_;  // FailoverLoop's, then ProtectLoop's
  std::chrono::steady_clock::time_point next_redial_;     // FailoverLoop's thread only

  std::unique_ptr<qemu::QemuProcess> qemu_;         // when this agent launched QEMU
  // The machine as launched (host-local paths filled in, the disk's size): what the standby
  // is built from.
  qemu::VmDefinition vm_;
  std::unique_ptr<disk::DiskServer> disk_server_;   // when the VM has a disk (unless adopted)
  // The secondary's copy of the disk, from its hello; the pairing's lineage and what its
  // initial copy was relative to; the disk generation sealed with epoch 1.
  std::mutex peer_disk_mutex_;
  disk::LineageRecord peer_disk_;  // guarded by peer_disk_mutex_
  std::string disk_lineage_, disk_base_lineage_;  // ColoPeer's thread, before epoch 1 ships
  std::atomic<uint64_t> disk_generation_of_epoch1_{0};
  std::optional<disk::InitialCopy> initial_copy_;          // ColoPeer's thread only
  std::atomic<uint64_t> disk_sync_complete_epoch_{0};      // the epoch carrying its last part
  std::atomic<CheckpointShipper*> early_disk_write_target_{nullptr};  // test_ship_disk_writes_early
  // Disk bytes of each epoch not yet acknowledged, oldest first: the secondary copy's lag.
  mutable std::mutex unacked_disk_mutex_;
  std::deque<std::pair<uint64_t, uint64_t>> unacked_disk_bytes_;  // (epoch, bytes); guarded
  uint64_t UnackedDiskBytes() const;
  std::unique_ptr<qemu::QmpClient> attached_qmp_;   // when it attached to a running one
  std::optional<AdoptedVm> adopted_;                // when another agent handed it over
  UniqueFd serial_;
  std::mutex serial_mutex_;  // one reader of serial_ at a time (serial thread vs. drain)
  std::thread serial_thread_;
  OutputBuffer console_output_{checkpoint::OutputStream::kConsole};
  console::ReleasedLog own_released_console_;
  console::ReleasedLog& released_console_;  // own_released_console_, or the adopter's
  // The guest's NIC, when it has one: its frames are held like the console and released to
  // the tap on ack.
  OutputBuffer network_output_{checkpoint::OutputStream::kNetwork};
  console::ReleasedLog released_network_{4u << 20};
  std::unique_ptr<network::FrameRelay> relay_;
  std::unique_ptr<CheckpointShipper> shipper_;
  std::unique_ptr<ColoPeer> peer_;
  // QmpClient is not thread-safe: every QMP command this agent issues while protecting (the
  // failover thread's, a step-down's) holds this.
  std::mutex qmp_mutex_;
  // Decides when each checkpoint starts (held output, the adaptive interval). Null when
  // neither output-triggered checkpoints nor a pause target is configured: QEMU's own timer
  // then paces them.
  std::unique_ptr<CheckpointPacer> pacer_ = MakePacer();
  std::unique_ptr<failover::Arbiter> arbiter_;
  std::unique_ptr<failover::PeerMonitor> monitor_;
  uint64_t record_revision_ = 0;  // the ownership record as this primary last wrote it
  std::thread heartbeat_thread_;
  std::thread arbiter_probe_thread_;
  std::thread failover_thread_;

  // Page buffers of shipped captures, for the next ones (see ShipperOptions).
  std::mutex page_buffers_mutex_;
  std::vector<std::vector<std::byte>> page_buffers_;  // guarded by page_buffers_mutex_
  std::vector<std::byte> TakePageBuffer();

  failover::TransitionLog transitions_;
  std::chrono::steady_clock::time_point next_record_check_;  // FailoverLoop's thread only
  std::unique_ptr<monitoring::MetricsServer> metrics_server_;  // unless adopted
  std::unique_ptr<monitoring::AgentMetrics> metrics_;          // set before any thread starts
  // Refreshes the gauges that are states rather than events (in flight, held output, RTT).
  void SampleMetrics();
  std::chrono::steady_clock::time_point next_sample_;           // FailoverLoop's thread only
  std::chrono::steady_clock::time_point peer_declared_dead_;    // FailoverLoop's thread only
  std::optional<std::chrono::steady_clock::time_point> dead_since_;  // FailoverLoop's thread only
  std::chrono::steady_clock::time_point last_pause_start_;      // ColoPeer's thread only

  mutable std::mutex status_mutex_;
  // Protected by status_mutex_:
  State state_ = State::kStarting;
  failover::PairState pair_state_ = failover::PairState::kSyncing;
  std::string last_error_;
  std::vector<double> pauses_ms_;  // most recent checkpoints, newest last
  PausePhases pause_phases_;
  std::vector<double> commits_ms_;  // stop → ack of the most recent epochs, newest last
  uint64_t checkpoints_ = 0;
  struct DiskSyncStatus {
    std::string kind = "pending";  // then "full" or "resync"
    uint64_t carried_bytes = 0;
    double progress = 0;           // share of the disk's ranges to cover that were read
  } disk_sync_;
  std::unique_ptr<PrimaryAgent> protector_;  // after a hand-over: protects the VM now
  std::chrono::steady_clock::time_point protected_since_;
};

std::string_view StateName(PrimaryAgent::State state);

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_
