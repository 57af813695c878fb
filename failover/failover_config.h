// FailoverConfig: the failover section both agents read from their configuration file.
//
//   "name": "host1",                     this agent in the ownership record (default: hostname)
//   "failover": {
//     "pair": "web1",                    heartbeats of other pairs are refused (both sides equal)
//     "heartbeat_key_file": "/etc/understudy/heartbeat.key",  a secret both agents share (at
//                                         least 32 bytes; deploy/make-certs.sh makes one):
//                                         heartbeats carry HMAC-SHA256 under a key derived from
//                                         it. Required unless every heartbeat address is loopback.
//     "heartbeat_listen": "10.0.2.1:7401", UDP heartbeat socket: this host's address on the
//                                         heartbeat network, told to the peer (no wildcard;
//                                         port 0: any)
//     "second_heartbeat": {               optional: heartbeat path B on a second, independent
//       "listen": "10.0.3.1:7401",         network: this host's address there (fixed port) and
//       "peer": "10.0.3.2:7401"            the peer's (each host's config names the other's).
//     },                                  Without it the pair has no redundant heartbeat path:
//                                         a cut of the one heartbeat network is a cut of both
//                                         heartbeat paths, and status and the metric
//                                         understudy_heartbeat_networks say so
//                                         (failover/heartbeat_paths.h).
//     "interval_ms": 20,                 heartbeat period on each path
//     "budget_ms": 150,                  silence on every path before the peer is dead
//     "arbiter": "https://10.0.0.9:2379", etcd (v3 JSON gateway). Required. "none" (no arbiter:
//                                         split brain would be possible, SAFETY.md) is accepted
//                                         only when every address in the config (heartbeat_listen,
//                                         second_heartbeat, listen, secondary, metrics_listen,
//                                         reprotect.secondary) is loopback: one host, demos, tests.
//     "etcd_ca_file": "/etc/understudy/pki/ca.pem",      the CA that signs etcd's server
//                                         certificate; required for an https:// arbiter
//     "etcd_cert_file": "/etc/understudy/pki/host1.pem", this agent's client certificate and
//     "etcd_key_file": "/etc/understudy/pki/host1.key"   key, for etcd's --client-cert-auth
//                                         (both or neither). Every file must be readable when
//                                         the config is loaded.
//   }
#ifndef UNDERSTUDY_FAILOVER_FAILOVER_CONFIG_H_
#define UNDERSTUDY_FAILOVER_FAILOVER_CONFIG_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "failover/arbiter.h"
#include "failover/heartbeat_paths.h"
#include "failover/pair_controller.h"

namespace understudy::failover {

// Heartbeat path A and what every path shares: how often, how much silence means dead, and
// which pair's heartbeats count.
struct PeerMonitorOptions {
  std::string udp_listen = "127.0.0.1:0";  // where our heartbeats come from and arrive
  std::chrono::milliseconds interval{20};   // heartbeat period on each path
  std::chrono::milliseconds budget{150};    // silence on every path before "dead"
  uint64_t pair_id = 0;                     // refuses another pair's heartbeats
  std::array<uint8_t, 32> heartbeat_key{};  // authenticates heartbeats (HMAC-SHA256)
};

struct FailoverConfig {
  std::string name;
  PeerMonitorOptions monitor;  // heartbeat path A, the budget, the pair's id and key
  SecondHeartbeatPath second_heartbeat;  // heartbeat path B; not configured: no redundant path
  std::string arbiter;  // an etcd endpoint, or "none"
  EtcdCredentials etcd;

  static Result<FailoverConfig> FromJson(const nlohmann::json& agent_config);
  // What HeartbeatPaths::Start needs: every heartbeat path, the pair's key and interval.
  HeartbeatPathsOptions HeartbeatOptions() const;
  // The arbiter for `vm`'s ownership record ("/understudy/vms/<vm>/owner").
  Result<std::unique_ptr<Arbiter>> MakeArbiterFor(const std::string& vm) const;
  // The pair controller this agent runs in `role`: its name, the heartbeat budget, and
  // whether an arbiter exists ("none" passed the config's loopback check: one host).
  PairControllerOptions ControllerOptions(Role role) const;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_FAILOVER_CONFIG_H_
