// AgentPair: a protected counter guest as an operator would run it — ft-secondary and
// ft-primary as separate processes with their own configuration files — plus the means to
// watch it (control API, console follower) and to hurt it (SIGKILL, SIGSTOP).
//
// Everything started here dies with the AgentPair (and with the test process: every child
// carries PR_SET_PDEATHSIG, and each agent's QEMUs carry it too).
#ifndef UNDERSTUDY_TESTS_HARNESS_AGENT_PAIR_H_
#define UNDERSTUDY_TESTS_HARNESS_AGENT_PAIR_H_

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/result.h"
#include "console/console_follower.h"
#include "tests/harness/etcd_server.h"
#include "tests/harness/client_network.h"
#include "tests/harness/network_lab.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {

struct AgentPairOptions {
  // The checkpoint channel: "tls" (certificates from deploy/make-certs.sh; the default, as in
  // production), "zmq+curve" (fresh CURVE keypairs) or "tcp" (insecure).
  std::string transport = "tls";
  // "etcd" (a real etcd started for the pair) or "none".
  std::string arbiter = "etcd";
  CounterGuestOptions guest;
  uint32_t checkpoint_interval_ms = 50;
  uint32_t max_in_flight = 4;
  // The primary asks for a checkpoint at once when output is held (primary_config.h).
  bool output_triggered_checkpoints = true;
  std::optional<uint32_t> min_checkpoint_spacing_ms;  // primary_config.h's default when unset
  uint32_t max_pause_ms = 0;                          // a pause target (adaptive interval); 0: none
  std::optional<uint64_t> corrupt_epoch;  // primary: flip a byte of this epoch in transit
  uint32_t ack_delay_ms = 0;              // secondary: hold every ack this long
  std::optional<uint32_t> verify_period_ms;  // secondary: standby verification period
  // Attach the primary to an already running QEMU through these sockets instead of
  // launching one (its QEMU is then the caller's to kill).
  std::string attach_qmp_socket;
  std::string attach_serial_socket;
  // Extra arguments for the primary's QEMU only (a benchmark's own `-qmp` monitor, `-trace`).
  std::vector<std::string> primary_qemu_args;
  // Run the primary, the secondary and etcd as separate hosts: each in its own network
  // namespace of a NetworkLab (tests/harness/network_lab.h), joined by a replication link, a
  // heartbeat link and an arbiter LAN. Otherwise everything talks over loopback.
  bool separate_hosts = false;
  // With separate_hosts: both agents also heartbeat over the lab's second_heartbeat network
  // (failover.second_heartbeat: heartbeat path B); otherwise the pair has one heartbeat network.
  bool second_heartbeat = false;
  // With separate_hosts and tls/tcp: after a promotion, the promoted agent protects the VM
  // again once a new secondary listens on the old primary's host (StartReplacementSecondary).
  bool reprotect = false;
  // Run the disk guest (tests/guests/disk_writer.c) instead of the counter, with a disk the
  // primary serves and replicates and the secondary keeps a copy of (a replacement
  // secondary, on the primary's host, uses the primary's old image).
  bool disk = false;
  uint64_t disk_bytes = 4 << 20;
  // The disk guest's spin between records, verbatim; unset: derived for the accelerator in use
  // (tests/harness/guest_pace.h; the spin costs ~4 µs a unit under this machine's KVM, ~6 ns
  // under TCG).
  std::optional<uint32_t> disk_guest_delay;
  // Fill the disk with non-zero bytes before the guest starts, so a full copy carries all of
  // it (an empty disk's full copy is as small as a resync).
  bool disk_filled = false;
  // TEST ONLY, the disk negative control: the primary also sends every disk write as it
  // completes and the secondary writes it into its copy at once, not at commit.
  bool disk_apply_on_arrival = false;
  // Run the network guest (tests/guests/net_service.c) instead of the counter, its NIC on a
  // ClientNetwork's bridge through each agent's tap; network() then names the namespace
  // where its clients run.
  bool network = false;
  // TEST ONLY, the network negative control: the primary releases the guest's frames at once
  // instead of when their epoch is acked.
  bool network_output_commit_off = false;
  // TEST ONLY: the secondary stops halfway through applying this epoch's disk writes.
  uint64_t stall_disk_apply_at_epoch = 0;
  // TEST ONLY, the RAM-equality oracle's negative control: the primary leaves pc.ram's
  // highest dirty page out of this epoch's checkpoint.
  uint64_t drop_page_at_epoch = 0;
  // TEST ONLY: the primary holds QEMU's VM stopped at this epoch from the start (before
  // vmstate-loaded) until test_release_checkpoint (tests/harness/ram_oracle.h).
  uint64_t hold_checkpoint_at_epoch = 0;
  // Protect this VM instead of one of our guests (e.g. the Linux guest,
  // tests/harness/linux_guest.h); with `network`, its NIC goes on the ClientNetwork like the
  // network guest's, so it must serve on ClientNetwork::kGuestAddress with kGuestMac.
  std::optional<qemu::VmDefinition> vm;
  // Both agents run this accelerator's QEMU instead of the chosen one (the Linux guest always
  // needs TCG with the vehicle: LinuxGuestAccelerator()).
  std::optional<GuestAccelerator> accelerator;
  // With separate_hosts: runs after the secondary listens and before the primary starts, e.g.
  // to cut a path (drill/network_faults.h) that must be down while the two pair.
  std::function<Status(const drill::LabTopology&)> before_primary_starts;
  // Both agents' heartbeat budget (failover.budget_ms: silence before the peer is dead);
  // std::nullopt: the agents' own default (150 ms), for what measures detection (the demo,
  // failover_drill_test). Suites default to kSuiteHeartbeatBudgetMs: on this 2-core machine,
  // loaded by the suite's other test and its guests, agents' real-time threads ran 100-670 ms
  // late (their controller clocks' "this host stalled" logs in full runs), and at a 150 ms
  // budget false failovers followed. Each ended a test whose subject was not detection speed
  // (a serial history, a disk resync, a pairing): 3 of 1226 tests in one run, 2 in the next.
  static constexpr uint32_t kSuiteHeartbeatBudgetMs = 1000;
  std::optional<uint32_t> heartbeat_budget_ms = kSuiteHeartbeatBudgetMs;
  // The secondary's own budget, when it differs from the primary's (hosts may be configured
  // apart): orders the two sides' detections of one cut.
  std::optional<uint32_t> secondary_heartbeat_budget_ms;
};

// Empty when this machine can run an AgentPair — a guest accelerator (KVM, or TCG with the TCG
// vehicle; tests/harness/guest_accelerator.h), etcd and, with `separate_hosts`, network
// namespaces; otherwise why not, for a skip message. Both agents run the chosen accelerator's
// QEMU (`qemu_binary`) and the VM definition names the accelerator.
std::optional<std::string> AgentPairUnavailableReason(bool separate_hosts);

// At the top of a gtest body (or SetUp): skips, visibly and counted as skipped, when this
// machine cannot run an AgentPair. Never lets such a test pass silently.
#define UNDERSTUDY_REQUIRE_AGENT_PAIR(separate_hosts)                                                         \
  do {                                                                                                        \
    if (auto understudy_pair_reason_ = ::understudy::testing::AgentPairUnavailableReason(separate_hosts)) { \
      GTEST_SKIP() << "skipped: " << *understudy_pair_reason_;                                               \
    }                                                                                                         \
  } while (0)

class AgentPair {
 public:
  // Starts the secondary, then the primary, and returns once the primary is protecting.
  static Result<std::unique_ptr<AgentPair>> Start(const AgentPairOptions& options, std::string_view name);

  Result<nlohmann::json> PrimaryStatus() const;
  Result<nlohmann::json> SecondaryStatus() const;
  // Polls the agent's status until its "state" is `state`.
  Status WaitForSecondaryState(const std::string& state, Deadline deadline) const;
  Status WaitForPrimaryState(const std::string& state, Deadline deadline) const;

  // TEST ONLY: the secondary stops (or resumes) acknowledging while staying alive.
  Status HoldSecondaryAcks(bool hold) const;
  // TEST ONLY: a command on an agent's control socket (both agents run with
  // "test_only": {"control_commands": true}), e.g. {"command": "test_hold_checkpoint", ...}.
  Result<nlohmann::json> PrimaryControl(const nlohmann::json& request, Deadline deadline) const;
  Result<nlohmann::json> SecondaryControl(const nlohmann::json& request, Deadline deadline) const;

  // SIGKILL the primary's QEMU and the primary agent, as a host failure would.
  void KillPrimary();
  // SIGKILL the secondary agent and its standby QEMU.
  void KillSecondary();
  // After KillSecondary: ft-secondary again, as a host coming back would run it — the same
  // configuration, runtime directory, disk copy and listening address, without test switches.
  Status RestartSecondary();
  // After the primary died: starts ft-secondary on the old primary's host (its name, its
  // certificate, its addresses), where the promoted agent looks for a new secondary.
  Status StartReplacementSecondary();
  std::string replacement_dir() const { return dir_.path() + "/replacement"; }
  // After StartReplacementSecondary: polls until the promoted agent protects the VM again
  // (role primary, state protected) and returns that status; otherwise says what it saw.
  Result<nlohmann::json> WaitForReprotection(Deadline deadline) const;
  std::string ReplacementLog() const;
  ChildProcess& primary() { return *primary_; }
  ChildProcess& secondary() { return secondary_; }

  // An observer following the VM's console across both agents.
  console::ConsoleFollower Follower() const;

  std::string PrimaryLog() const;
  // What the primary's QEMU wrote to stdout and stderr.
  std::string PrimaryQemuLog() const;
  // The pair's scratch directory (sockets a caller added live here too).
  const std::string& directory() const { return dir_.path(); }
  // The agents' runtime directories (control.sock, console.sock): what ftctl takes.
  std::string primary_dir() const { return dir_.path() + "/primary"; }
  std::string secondary_dir() const { return dir_.path() + "/secondary"; }
  // With separate_hosts: the lab (its description is what `ftctl drill --lab` reads).
  NetworkLab* lab() const { return lab_.get(); }
  EtcdServer* etcd() const { return etcd_.get(); }
  // With options.network: the clients' side of the VM's network.
  ClientNetwork* network() const { return network_.get(); }
  std::string SecondaryLog() const;

 private:
  AgentPair(ScratchDir dir, std::unique_ptr<NetworkLab> lab, std::unique_ptr<EtcdServer> etcd, ChildProcess secondary)
      : lab_(std::move(lab)), etcd_(std::move(etcd)), dir_(std::move(dir)), secondary_(std::move(secondary)) {}

  // Declared first, destroyed last: the network and etcd outlive the agents.
  std::unique_ptr<NetworkLab> lab_;
  std::unique_ptr<EtcdServer> etcd_;
  std::unique_ptr<ClientNetwork> network_;
  ScratchDir dir_;
  ChildProcess secondary_;
  std::optional<ChildProcess> primary_;
  std::optional<ChildProcess> replacement_;
  nlohmann::json replacement_config_;  // ft-secondary's configuration for the primary's host
  std::string secondary_listen_;       // where the first secondary listened (its chosen port)
  std::optional<int> primary_qemu_pid_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_AGENT_PAIR_H_
