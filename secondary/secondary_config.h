// SecondaryConfig: what ft-secondary reads from its configuration file (JSON).
//
//   {
//     "vm": "canary1",                   the VM this secondary protects (required): a
//                                         primary's hello and definition must name it; its
//                                         ownership record is derived from it
//                                         (secondary/primary_binding.h)
//     "listen": "tls://0.0.0.0:7400",     where the primary connects
//     "tls": {"ca": ..., "cert": ..., "key": ..., "peer_name": "host1"},
//                                         mutual TLS 1.3 (transport/channel_config.h);
//                                         "peer_name" names the primary this host protects
//                                         for (required unless every address is loopback);
//                                         zmq+curve:// names its key in "allowed_client_keys";
//                                         tcp:// needs "insecure": true instead
//     "runtime_dir": "/run/understudy/vm1-standby",
//     "name": "host2", "failover": {...}  heartbeats and the arbiter: see
//                                         failover/failover_config.h
//     "qemu_binary": "qemu-system-x86_64",
//     "metrics_listen": "0.0.0.0:9464",  Prometheus endpoint (default 127.0.0.1, any port)
//     "disk_image": "/var/lib/understudy/vm1.raw",  this host's copy of the VM's disk
//     "image_dir": "/var/lib/understudy/vm1",  where the kernel the primary's definition names
//                                         (by file name) is found; nothing outside it is used
//     "max_memory_mib": 65536,           a definition asking for more memory is refused
//     "verify_period_ms": 300000,        load the latest committed checkpoint into a scratch
//                                         QEMU this often (secondary/standby_verifier.h); 0: never
//     "reprotect": {"secondary": "tls://10.0.0.1:7400"}   optional: after a promotion, protect
//                                         the VM again once a secondary listens there
//                                         (primary/reprotect_config.h)
//   }
//
// "listen" may use port 0; the bound address is in the status ("listen").
//
// The VM itself is not configured here: the standby is built from the machine definition
// the primary sends, so the two can never drift apart. That definition is a declaration this
// host checks against its own policy (qemu/vm_definition.h): no free-form QEMU arguments,
// no paths outside image_dir.
#ifndef UNDERSTUDY_SECONDARY_SECONDARY_CONFIG_H_
#define UNDERSTUDY_SECONDARY_SECONDARY_CONFIG_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "network/network_config.h"
#include "failover/failover_config.h"
#include "primary/reprotect_config.h"
#include "qemu/vm_definition.h"
#include "secondary/primary_binding.h"
#include "transport/channel.h"

namespace understudy::secondary {

struct SecondaryConfig {
  std::string listen_uri;
  // The VM and the primaries this host protects ("vm", the transport's pins).
  PrimaryBinding binding;
  transport::ChannelOptions channel;  // "insecure", "tls": see transport/channel_config.h
  std::string runtime_dir;
  failover::FailoverConfig failover;
  std::string qemu_binary = "qemu-system-x86_64";
  // Prometheus endpoint (GET /metrics); port 0 picks one (the status shows which).
  std::string metrics_listen = "127.0.0.1:0";
  std::optional<primary::ReprotectConfig> reprotect;
  uint32_t verify_period_ms = 300000;
  // This host's copy of the VM's disk (disk/disk_replica.h), when the VM has one.
  std::string disk_image;
  // What a primary's machine definition may ask of this host ("image_dir", "max_memory_mib").
  qemu::DefinitionPolicy vm_policy;
  // This host's end of the VM's network link, when the VM has a NIC (network/network_config.h).
  std::optional<network::NetworkConfig> network;
  uint32_t test_ack_delay_ms = 0;  // "test_only": {"ack_delay_ms": N}: hold every ack (tests)
  // "test_only": {"apply_disk_writes_on_arrival": true}: writes the primary sends early go
  // straight into the copy (the negative control of disk replication; see agent_protocol.h).
  bool test_apply_disk_writes_on_arrival = false;
  // "test_only": {"stall_disk_apply_at_epoch": N}: halfway through applying epoch N's disk
  // writes, stop for good (a test then kills the agent there: a crash mid-apply).
  uint64_t test_stall_disk_apply_at_epoch = 0;
  // "test_only": {"control_commands": true}: the control API also offers test_hold_acks,
  // test_corrupt_device_state and test_dump_ram (secondary/test_ram_dump.h). Absent from any production configuration.
  bool test_control_commands = false;

  std::string control_socket() const { return runtime_dir + "/control.sock"; }
  std::string console_socket() const { return runtime_dir + "/console.sock"; }

  static Result<SecondaryConfig> FromJson(const nlohmann::json& json);
  static Result<SecondaryConfig> Load(const std::string& path);
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_SECONDARY_CONFIG_H_
