// LabTopology: where the hosts of a protected pair sit on the network, so that drills can
// hurt the network between them.
//
// A lab puts each host (primary, secondary, arbiter) in its own network namespace and joins
// them through bridges — one per network (replication link, heartbeat link, arbiter LAN) —
// that all live in one "switch" namespace. Every fault is made on the switch, never inside a
// host: a port taken off its bridge is a cable pulled (packets vanish silently, as in a real
// partition: no error, no reset); a rate limit on a port is a slow link. The hosts keep
// their addresses, routes and sockets, exactly as real hosts would.
//
// tests/harness/network_lab.h builds labs; `ftctl drill --lab FILE` reads this description.
#ifndef UNDERSTUDY_DRILL_LAB_TOPOLOGY_H_
#define UNDERSTUDY_DRILL_LAB_TOPOLOGY_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace understudy::drill {

// One host's connection to one network: a veth whose switch end `port` is enslaved to
// `bridge` in the switch namespace.
struct LabPort {
  std::string host;     // "primary", "secondary", "arbiter"
  std::string network;  // "replication", "heartbeat", "second_heartbeat", "arbiter"
  std::string bridge;   // bridge name in the switch namespace
  std::string port;     // switch-side interface name
  std::string address;  // the host's IPv4 address on that network
};

struct LabTopology {
  std::string switch_namespace;
  std::map<std::string, std::string> host_namespaces;  // host → namespace
  std::vector<LabPort> ports;

  // The hosts on `network`.
  std::vector<std::string> HostsOn(const std::string& network) const;
  // The host's address on `network`; kNotFound if it is not on it.
  Result<std::string> AddressOf(const std::string& host, const std::string& network) const;

  nlohmann::json ToJson() const;
  static Result<LabTopology> FromJson(const nlohmann::json& json);
  static Result<LabTopology> Load(const std::string& path);
};

}  // namespace understudy::drill

#endif  // UNDERSTUDY_DRILL_LAB_TOPOLOGY_H_
