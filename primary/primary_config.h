// PrimaryConfig: what ft-primary reads from its configuration file (JSON).
//
//   {
//     "vm": { ...qemu/vm_definition.h as JSON... },   the machine to protect
//     "secondary": "tls://10.0.0.2:7400",            where ft-secondary listens
//     "tls": {"ca": ..., "cert": ..., "key": ...,   mutual TLS 1.3 (transport/channel_config.h);
//             "peer_name": "host2"},                 the secondary's certificate name: required
//                                                    unless "secondary" is on loopback;
//                                                    tcp:// needs "insecure": true instead
//     "checkpoint_interval_ms": 50,                  the longest interval (QEMU's x-checkpoint-delay
//                                                    when nothing paces them)
//     "max_in_flight": 4,                            unacknowledged checkpoints before
//                                                    the next one is delayed
//     "byte_caps": {"in_flight_mib": 1024,           memory held for the secondary, capped:
//                   "held_output_mib": 512,          crossing one is a pair event (the pair
//                   "unshipped_disk_mib": 512},      goes unprotected, record first):
//                                                    primary/byte_caps.h
//     "output_triggered_checkpoints": true,          held output starts a checkpoint at
//                                                    once (primary/checkpoint_pacer.h);
//                                                    false: only the periodic ones
//     "min_checkpoint_spacing_ms": 2,                ...the VM running at least this long
//                                                    between two pauses
//     "max_pause_ms": 10,                            optional pause target: the interval
//                                                    adapts (primary/adaptive_interval.h),
//                                                    within [spacing, checkpoint_interval_ms]
//     "min_run_fraction": 0.9,                       optional: reported when the VM runs
//                                                    less than this share of the time
//     "runtime_dir": "/run/understudy/vm1",          sockets and QEMU's log
//     "boot_timeout_ms": 60000,                      wait this long for the guest's first
//                                                    console output before protecting it
//     "qemu_binary": "qemu-system-x86_64",
//     "qemu_extra_args": ["-trace", "..."],          this host's QEMU only, never shipped
//     "disk_image": "/var/lib/understudy/vm1.raw",  optional: the VM's disk, replicated
//     "network": {"tap": ..., "mac": ...},           optional: the VM's NIC on a tap, its
//                                                    frames held until acked
//                                                    (network/network_config.h)
//     "metrics_listen": "0.0.0.0:9464",              Prometheus endpoint (default
//                                                    127.0.0.1, any free port)
//     "attach": {"qmp": "/run/vm1/qmp.sock",        optional: protect a QEMU that already
//                "serial": "/run/vm1/serial.sock"}  runs instead of launching one; it must
//   }                                                match "vm" and expose both sockets as
//                                                    servers (-qmp unix:...,server=on and
//                                                    -chardev socket,...,server=on for COM1)
//
// The agent sets the VM's serial backend itself (a socket in runtime_dir it reads from).
#ifndef UNDERSTUDY_PRIMARY_PRIMARY_CONFIG_H_
#define UNDERSTUDY_PRIMARY_PRIMARY_CONFIG_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "network/network_config.h"
#include "transport/channel.h"
#include "failover/failover_config.h"
#include "primary/byte_caps.h"
#include "qemu/vm_definition.h"

namespace understudy::primary {

struct AttachConfig {
  std::string qmp_socket;
  std::string serial_socket;
};

struct PrimaryConfig {
  qemu::VmDefinition vm;
  std::string secondary_uri;
  transport::ChannelOptions channel;  // "insecure", "tls": see transport/channel_config.h
  uint32_t checkpoint_interval_ms = 50;
  uint32_t max_in_flight = 4;
  ByteCaps byte_caps;  // "byte_caps"
  // Held output (a frame, console bytes, a completed disk write) starts a checkpoint now
  // instead of waiting up to an interval for the periodic one; the interval stays the upper
  // bound. Costs more, smaller checkpoints when the guest talks; an idle guest pays nothing.
  // The spacing (from the end of one pause to the start of the next) bounds the rate below
  // 1000 / min_checkpoint_spacing_ms per second and keeps the VM running at least that long
  // between pauses. 2 ms: network_bench's request/reply client at 5 ms waited ~2 ms per
  // request for the spacing alone (bench/RESULTS.md).
  bool output_triggered_checkpoints = true;
  uint32_t min_checkpoint_spacing_ms = 2;
  // Pause target (0: none): the agent shortens the interval, down to the minimum spacing, so
  // the pause p99 stays within it, and reports when it cannot (status "pacing", metric
  // understudy_checkpoint_pause_target_met, alert UnderstudyPauseTargetMissed).
  uint32_t max_pause_ms = 0;
  // Share of the time the VM should run (0: none); judged and reported, see adaptive_interval.h.
  double min_run_fraction = 0;
  std::string runtime_dir;
  uint32_t boot_timeout_ms = 60000;
  std::string qemu_binary = "qemu-system-x86_64";
  // Prometheus endpoint (GET /metrics); port 0 picks one (the status shows which).
  std::string metrics_listen = "127.0.0.1:0";
  // The VM's disk: a raw image this agent serves to QEMU over NBD and replicates with every
  // checkpoint (disk/disk_server.h). Empty: no disk.
  std::string disk_image;
  // How much of the disk each checkpoint carries of a pairing's initial copy (read inside the
  // VM's pause): "disk_sync_mib_per_checkpoint", default 8.
  uint64_t disk_sync_bytes_per_checkpoint = 8u << 20;
  std::optional<network::NetworkConfig> network;
  // Appended to this host's QEMU command line only (tracing, an extra monitor); never shipped
  // to the secondary (a VM definition has no free-form arguments: qemu/vm_definition.h).
  std::vector<std::string> qemu_extra_args;
  std::optional<AttachConfig> attach;
  failover::FailoverConfig failover;  // "name", "failover": see failover/failover_config.h
  std::optional<uint64_t> test_corrupt_epoch;  // "test_only": {"corrupt_epoch": N}
  // "test_only": {"ship_disk_writes_early": true}: also send every disk write the moment it
  // completes, outside any checkpoint (for the disk negative control; see agent_protocol.h).
  bool test_ship_disk_writes_early = false;
  // "test_only": {"network_output_commit_off": true}: the guest's frames go out at once, not
  // when their epoch is acked (the network negative control).
  bool test_network_output_commit_off = false;
  // "test_only": {"control_commands": true}: the control API also offers
  // test_hold_checkpoint / test_held_checkpoint / test_release_checkpoint
  // (primary/test_checkpoint_hold.h). Absent from any production configuration.
  bool test_control_commands = false;
  // "test_only": {"drop_page_at_epoch": N}: epoch N's checkpoint leaves out its highest dirty
  // page of "pc.ram", as incomplete dirty tracking would (the RAM-equality oracle's negative
  // control).
  uint64_t test_drop_page_at_epoch = 0;
  // "test_only": {"hold_checkpoint_at_epoch": N} (with control_commands): the hold of
  // test_hold_checkpoint, armed for epoch N from the start.
  uint64_t test_hold_checkpoint_at_epoch = 0;

  std::string control_socket() const { return runtime_dir + "/control.sock"; }
  std::string console_socket() const { return runtime_dir + "/console.sock"; }

  static Result<PrimaryConfig> FromJson(const nlohmann::json& json);
  static Result<PrimaryConfig> Load(const std::string& path);
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PRIMARY_CONFIG_H_
