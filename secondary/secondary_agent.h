// SecondaryAgent: ft-secondary's core. Receives checkpoints from the primary, validates each
// completely, commits it all-or-nothing to its RAM image, forwards it to the ready standby,
// and only then acknowledges it — the ack is what lets the primary release that epoch's
// output. A damaged checkpoint is rejected with a log line and a NACK; the image and the
// standby stay at the previous epoch.
//
// When the failure detector declares the primary dead (silent on the UDP heartbeat path and
// the checkpoint channel for the whole budget) it contends for the VM's ownership record;
// only after winning does it promote: the standby receives the committed device state and
// runs the guest from the last committed checkpoint, and the agent serves the VM's console
// from exactly where committed output ended. Losing the record fences it (the standby is
// discarded). A broken checkpoint link alone never promotes (failover/SAFETY.md).
//
// Lifecycle: kWaitingForPrimary → kSyncing (connected, nothing committed yet) →
// kStandbyReady (committing) ⇄ kDegraded (a path silent) → kFailingOver (contending) →
// kPromoting → kPromoted | kFenced; kFailed on an unrecoverable error.
//
// Thread safety: Run() on one thread; RequestStop(), RequestPromotion() and StatusJson()
// from any.
#ifndef UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_
#define UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "checkpoint/ram_image.h"
#include "common/unique_fd.h"
#include "console/released_log.h"
#include "disk/disk_replica.h"
#include "disk/disk_server.h"
#include "failover/arbiter.h"
#include "network/frame_relay.h"
#include "failover/peer_monitor.h"
#include "failover/transition_log.h"
#include "monitoring/agent_metrics.h"
#include "monitoring/metrics_server.h"
#include "primary/promoted_vm_owner.h"
#include "qemu/vm_definition.h"
#include "replication/agent_protocol.h"
#include "secondary/secondary_config.h"
#include "secondary/standby.h"
#include "secondary/standby_verifier.h"
#include "secondary/test_ram_dump.h"
#include "transport/channel.h"

namespace understudy::secondary {

class SecondaryAgent {
 public:
  enum class State {
    kWaitingForPrimary,
    kSyncing,
    kStandbyReady,
    kDegraded,
    kFailingOver,
    kPromoting,
    kPromoted,
    kFenced,
    kStopped,
    kFailed,
  };

  explicit SecondaryAgent(SecondaryConfig config);
  ~SecondaryAgent();

  Status Run();
  void RequestStop() { stop_requested_.store(true); }
  void RequestPromotion() { promotion_requested_.store(true); }
  // TEST ONLY: stop acknowledging (while staying alive and heartbeating) until released.
  void TEST_HoldAcks(bool hold) { test_hold_acks_.store(hold); }
  // TEST ONLY: store every committed device state truncated (simulated storage damage) — what
  // standby verification must catch.
  void TEST_CorruptDeviceState(bool corrupt) { test_corrupt_device_state_.store(corrupt); }

  nlohmann::json StatusJson() const;

 private:
  // Serves one primary until it leaves. Returns OK after a goodbye or a promotion.
  Status ServePrimary(transport::Channel& channel);
  Status Receive(transport::Channel& channel, std::span<const std::byte> message);
  // A checkpoint (`which`: its epoch, or what was expected) was refused: log, count, remember.
  void RecordRejection(const std::string& which, const Status& why, uint64_t committed);
  Status CommitFirst(const checkpoint::Checkpoint& checkpoint);
  Status Commit(const checkpoint::Checkpoint& checkpoint);
  Status AppendOutputs(const checkpoint::Checkpoint& checkpoint);
  Status Promote(std::string_view why);
  // Promoted and configured to re-protect: if a new secondary listens, hand the running VM to
  // primary/'s owner of a VM (primary/promoted_vm_owner.h), which protects it again.
  void TryReprotect();
  // The primary is dead: win the ownership record, then promote; or fence.
  Status TakeOver(std::string_view why);
  void OnHello(const replication::Hello& hello);
  // A primary's hello: decoded and held to config_.binding (the VM, the proved identity);
  // false after refusing it (RefusePrimary), when the caller drops the connection.
  bool AcceptHello(const transport::Channel& channel, std::span<const std::byte> message);
  void RefusePrimary(const Status& why);  // log, count, remember
  void WatchPeer();  // degraded / standby-ready as the detector's verdict changes
  // While the primary is not heard, checks now and then that the record still names it; a
  // record that moved (the primary went unprotected) fences this secondary.
  void CheckRecordStillPrimary();
  State state() const;
  Status SendLocked(transport::Channel& channel, const std::string& message);
  void SerialLoop();
  void SetState(State state, const std::string& why = "");

  const SecondaryConfig config_;
  std::unique_ptr<failover::PeerMonitor> monitor_;
  std::unique_ptr<failover::Arbiter> arbiter_;
  uint64_t record_revision_ = 0;  // the record the primary owns, as we last read it
  std::string primary_name_;
  std::mutex send_mutex_;  // replies and heartbeats share the channel
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> promotion_requested_{false};
  std::atomic<bool> test_hold_acks_{false};
  std::atomic<bool> test_corrupt_device_state_{false};
  TestRamDump test_ram_dump_;  // TEST ONLY: served between checkpoints by the commit thread
  std::unique_ptr<StandbyVerifier> verifier_;  // unless verify_period_ms is 0
  // Keeps the committed device state (damaged when the test switch says so).
  void StoreDeviceState(const std::string& device_state);

  // Owned by the Run() thread:
  std::optional<qemu::VmDefinition> definition_;
  std::optional<checkpoint::QemuStreamInfo> stream_info_;
  std::unique_ptr<checkpoint::RamImage> image_;
  std::string device_state_;  // of the committed epoch
  std::unique_ptr<Standby> standby_;
  std::unique_ptr<disk::DiskReplica> disk_;         // when configured
  std::unique_ptr<disk::DiskServer> disk_server_;   // serves disk_ to the standby QEMU
  // Frames a re-protecting primary released, which relay_ follows to the tap (declared
  // first: the relay's thread reads it until the relay is gone).
  console::ReleasedLog released_network_{4u << 20};
  // The standby's NIC on this host's tap: silent until promotion, then relaying directly.
  std::unique_ptr<network::FrameRelay> relay_;
  Status ConnectStandbyNetwork(network::FrameRelay::Mode mode);
  // A standby that could run the VM: the initial image and the whole initial disk copy
  // committed. Without one, a silent primary is waited for, never replaced.
  bool CanTakeOver() const { return image_ && !disk_syncing_; }
  bool disk_syncing_ = false;  // the pairing's initial disk copy is still arriving (commit thread)
  // Every 5 s: can this host reach the arbiter? (its own client, off the commit thread)
  void ProbeArbiterLoop();
  void PublishArbiterReachability();  // into the metrics, from the commit thread
  std::atomic<int> arbiter_reachable_{-1};  // -1 unknown, 0 no, 1 yes
  bool HasNic() const { return definition_ && definition_->nic.kind == qemu::NicBackend::Kind::kStreamUnixServer; }
  // Status after `checkpoint`'s disk writes reached the copy; returns their bytes.
  uint64_t NoteDiskApplied(const checkpoint::Checkpoint& checkpoint, const std::string& lineage);
  uint64_t disk_bytes_applied_ = 0;  // commit thread only
  // TEST ONLY (test_apply_disk_writes_on_arrival): an early write straight into the copy.
  void ApplyUncommittedTestWrite(std::span<const std::byte> message);
  // Step 1 of committing a checkpoint's disk writes (before its RAM), see DiskReplica.
  Status JournalDisk(const checkpoint::Checkpoint& checkpoint);
  bool standby_broken_ = false;
  UniqueFd standby_serial_;
  std::thread serial_thread_;
  std::atomic<bool> serial_stop_{false};  // the promoted VM's console goes to a PromotedVmOwner
  std::chrono::steady_clock::time_point next_reprotect_log_;
  console::ReleasedLog console_;  // committed output, then (after promotion) the VM's own

  failover::TransitionLog transitions_;
  std::unique_ptr<monitoring::MetricsServer> metrics_server_;
  // Created at the primary's hello (the VM's name labels every series); Run() thread only.
  std::unique_ptr<monitoring::AgentMetrics> metrics_;
  std::chrono::steady_clock::time_point next_sample_;         // Run() thread only
  std::chrono::steady_clock::time_point takeover_started_;    // Run() thread only
  const std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
  std::unique_ptr<primary::PromotedVmOwner> reprotector_;  // set under status_mutex_
  std::chrono::steady_clock::time_point next_record_check_;  // Run() thread only

  mutable std::mutex status_mutex_;
  // Protected by status_mutex_:
  State state_ = State::kWaitingForPrimary;
  int standby_qemu_pid_ = 0;
  uint64_t committed_epoch_ = 0;
  uint64_t rejected_ = 0;
  uint64_t refused_primaries_ = 0;  // hellos refused by config_.binding, or missing
  std::string vm_name_;  // from the primary's hello
  nlohmann::json disk_status_;             // the disk copy after the last commit (null: none)
  uint64_t test_stalled_in_disk_apply_ = 0;
  uint64_t bytes_received_ = 0;
  std::string last_error_;
  std::string listen_address_;
  std::string primary_;
  double promotion_ms_ = 0;
};

std::string_view StateName(SecondaryAgent::State state);

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_
