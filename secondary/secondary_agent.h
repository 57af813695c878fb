// SecondaryAgent: ft-secondary's core. It wires three parts together:
//   * the Committer (secondary/committer.h), which validates each checkpoint the primary sends,
//     commits it all-or-nothing and feeds the ready standby (secondary/ready_standby.h); the
//     agent sends the committer's ack only then (the ack lets the primary release output);
//   * the pair controller (failover/pair_controller.h), stepped by a ControllerDriver: the one
//     place that decides whether this standby is promoted, fenced or stood down. The agent
//     posts what it sees (the primary's hello, what each path hears, commits, a goodbye) and
//     carries out the actions it returns;
//   * after a promotion, the owner role (secondary/owner_role.h): the VM runs on this host and
//     primary/'s code protects it again.
//
// A broken checkpoint link alone never promotes; only the controller's compare-and-swap on the
// ownership record does (failover/SAFETY.md). The status "state" names the controller's state
// as operators know it (waiting-for-primary, syncing, standby-ready, degraded, failing-over,
// promoting, promoted, fenced, stood-down).
//
// Thread safety: Run() on one thread (the "Run thread": it owns the channel, the committer and
// the standby); RequestStop(), RequestPromotion() and StatusJson() from any; Carry() on the
// controller driver's thread, which hands work for the Run thread over as Orders.
#ifndef UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_
#define UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "console/console_server.h"
#include "console/released_log.h"
#include "control/control_server.h"
#include "failover/arbiter.h"
#include "failover/arbiter_probe.h"
#include "failover/controller_driver.h"
#include "failover/heartbeat_paths.h"
#include "failover/transition_log.h"
#include "monitoring/agent_metrics.h"
#include "monitoring/metrics_server.h"
#include "replication/agent_protocol.h"
#include "secondary/committer.h"
#include "secondary/owner_role.h"
#include "secondary/ready_standby.h"
#include "secondary/secondary_config.h"
#include "secondary/standby_verifier.h"
#include "secondary/test_ram_dump.h"
#include "transport/channel.h"

namespace understudy::secondary {

class SecondaryAgent : public failover::ActionHandler {
 public:
  explicit SecondaryAgent(SecondaryConfig config);
  ~SecondaryAgent() override;

  Status Run();
  void RequestStop() { stop_requested_.store(true); }
  // The operator's promotion, decided by the controller: its refusal names the state.
  Status RequestPromotion();
  nlohmann::json StatusJson() const;
  // The controller's actions (driver thread): promote / fence / unpair become Orders for the
  // Run thread; after a promotion, owner actions go to the owner role.
  void Carry(const failover::Action& action) override;

 private:
  // What the controller asked of the Run thread, taken between two messages.
  struct Orders {
    bool promote = false;  // run the standby from the last committed checkpoint
    bool fence = false;    // discard the standby; never commit or promote again
    bool unpair = false;   // drop the primary's connection
  };

  // Run() without its cleanup.
  Status Serve();
  // The committer and its standby, metrics, the verifier, the heartbeat, the arbiter and the
  // controller (before the control API starts, so its handlers never see them change).
  Status StartParts();
  Status MakeCommitter();
  Status StartHeartbeat();
  // A fresh controller and driver for the next pairing (at start, and when a new primary
  // pairs after a goodbye or replaces its earlier run). Run thread only.
  Status StartController() EXCLUDES(controller_mutex_);
  void StopController() EXCLUDES(controller_mutex_);
  // Turns the controller's state changes into the status, the transition log and metrics.
  void WatchController(std::shared_ptr<failover::ControllerDriver> driver);
  std::shared_ptr<failover::ControllerDriver> driver() const EXCLUDES(controller_mutex_);
  void Post(failover::Event event) const EXCLUDES(controller_mutex_);
  void OnHeartbeatHeard(failover::Path path);  // a heartbeat path's thread
  // Serves primaries one after another, and carries out the controller's orders.
  Status AcceptPrimaries(transport::Listener& listener);
  // Serves one primary until it leaves or an order ends the pairing.
  Status ServePrimary(transport::Channel& channel);
  void ChannelHeartbeatLoop(transport::Channel& channel, const std::atomic<bool>& serving);
  void SayGoodbye();
  // One message from the primary; false when the connection must be dropped.
  bool HandleMessage(transport::Channel& channel, std::span<const std::byte> message, bool& hello_accepted);
  // A primary's hello, held to config_.binding (the VM, the proved identity) and to the
  // controller's state; false after refusing it (RefusePrimary).
  bool AcceptHello(const transport::Channel& channel, std::span<const std::byte> message);
  void RefusePrimary(const Status& why) EXCLUDES(status_mutex_);
  // A checkpoint message: committed (or not) by the committer; its answer goes back.
  Status Receive(transport::Channel& channel, std::span<const std::byte> message);
  // TEST ONLY (test_apply_disk_writes_on_arrival): an early write straight into the copy.
  void ApplyUncommittedTestWrite(std::span<const std::byte> message);
  Status SendLocked(transport::Channel& channel, const std::string& message) EXCLUDES(send_mutex_);
  Orders TakeOrders() EXCLUDES(status_mutex_);
  // Carries out orders (Run thread); `drop` says the primary's connection must go.
  Status Obey(const Orders& orders, bool& drop);
  std::string HeartbeatAddress() const EXCLUDES(status_mutex_);
  void SetHeartbeatPeer(const std::string& address) EXCLUDES(status_mutex_);

  // Promotion and the owner role (secondary/promotion.cc).
  // Runs the standby from the last committed checkpoint; a VM that cannot run is reported to
  // the controller as kLocalVmDied.
  void Promote() EXCLUDES(status_mutex_);
  // Discards the standby and goes silent: the primary must see this side gone.
  void Fence() EXCLUDES(status_mutex_);
  void SerialLoop();
  // Promoted: serves the console and starts the owner role (re-protection) when it can.
  Status RunAsOwner() EXCLUDES(status_mutex_);
  // The seam with primary/: once a new secondary answers, hands the promoted VM to an owner
  // role (secondary/vm_owner_role.h) that this agent's controller drives. Run thread only.
  void StartOwnerRole() EXCLUDES(status_mutex_);
  Result<nlohmann::json> StepDownOwner() EXCLUDES(status_mutex_);
  // The owner role's clean stop (the VM stops, the new secondary is told goodbye), if any.
  void StopOwner() EXCLUDES(status_mutex_);

  // Status and control (secondary/secondary_status.cc).
  std::map<std::string, control::Handler> ControlHandlers();
  void AddTestControlHandlers(std::map<std::string, control::Handler>& handlers);
  void OnControllerState(failover::ControllerState to) EXCLUDES(status_mutex_);
  // For the state log: heartbeat path A's counters when `to` means the primary may be silent.
  std::string HeartbeatSummary(failover::ControllerState to) const EXCLUDES(status_mutex_);
  std::string StateNameLocked() const REQUIRES(status_mutex_);
  void Sample();  // heartbeat and verification metrics, now and then (Run thread)

  const SecondaryConfig config_;
  const std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> test_hold_acks_{false};
  TestRamDump test_ram_dump_;  // TEST ONLY: served between checkpoints by the Run thread
  failover::TransitionLog transitions_;
  // Released output: committed console bytes, then (after promotion) the VM's own; and the
  // frames a re-protecting primary released (declared before standby_: its relay reads them).
  console::ReleasedLog released_network_{4u << 20};
  console::ReleasedLog console_;

  // Set in StartParts() before any other thread starts, constant after; the objects are
  // thread-safe where the comment says so.
  std::unique_ptr<monitoring::MetricsServer> metrics_server_;
  std::unique_ptr<monitoring::AgentMetrics> metrics_;  // thread-safe
  std::unique_ptr<StandbyVerifier> verifier_;          // unless verify_period_ms is 0
  std::unique_ptr<ReadyStandby> standby_;              // Run thread only
  std::unique_ptr<Committer> committer_;               // Run thread; status() from any
  std::unique_ptr<failover::Arbiter> arbiter_;         // the driver's arbiter thread only

  // Run thread only:
  std::unique_ptr<console::ConsoleServer> console_server_;
  std::thread serial_thread_;
  std::atomic<bool> serial_stop_{false};  // the promoted VM's console goes to the owner role
  std::chrono::steady_clock::time_point next_sample_;
  std::chrono::steady_clock::time_point next_reprotect_log_;
  // The pairing the heartbeat path belongs to (the controller's peer incarnation).
  std::atomic<uint64_t> incarnation_{0};
  std::atomic<int> arbiter_reachable_{-1};  // -1 unknown, 0 no, 1 yes (ArbiterProbe thread)

  mutable Mutex send_mutex_;  // replies and channel heartbeats share the channel

  mutable Mutex controller_mutex_;
  std::shared_ptr<failover::ControllerDriver> driver_ GUARDED_BY(controller_mutex_);
  std::unique_ptr<std::thread> watcher_ GUARDED_BY(controller_mutex_);
  std::atomic<bool> watcher_stop_{false};

  mutable Mutex status_mutex_;
  Orders orders_ GUARDED_BY(status_mutex_);
  failover::ControllerState state_ GUARDED_BY(status_mutex_) = failover::ControllerState::kJoining;
  bool vm_running_ GUARDED_BY(status_mutex_) = false;  // promoted and the VM runs here
  uint64_t refused_primaries_ GUARDED_BY(status_mutex_) = 0;
  uint64_t bytes_received_ GUARDED_BY(status_mutex_) = 0;
  uint64_t pairing_revision_ GUARDED_BY(status_mutex_) = 0;
  std::string last_error_ GUARDED_BY(status_mutex_);
  std::string listen_address_ GUARDED_BY(status_mutex_);
  std::string primary_ GUARDED_BY(status_mutex_);
  double promotion_ms_ GUARDED_BY(status_mutex_) = 0;
  int standby_qemu_pid_ GUARDED_BY(status_mutex_) = 0;
  std::string final_state_ GUARDED_BY(status_mutex_);  // "stopped" or "failed" once Run ends
  std::chrono::steady_clock::time_point failing_over_since_ GUARDED_BY(status_mutex_);
  // Until the owner role heartbeats from the same address (re-protection).
  std::unique_ptr<failover::HeartbeatPaths> heartbeat_ GUARDED_BY(status_mutex_);
  std::unique_ptr<OwnerRole> owner_ GUARDED_BY(status_mutex_);
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_
