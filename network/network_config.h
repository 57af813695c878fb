// Where an agent connects the protected VM's NIC, from the agent's configuration:
//   "network": {
//     "tap": "vm1tap0",                  a tap on the VM's bridge (both hosts: same L2 segment)
//     "netns": "/run/netns/vmnet",       optional: the network namespace that tap lives in
//     "mac": "52:54:00:12:34:56"         the NIC's MAC (primary; it travels to the standby)
//   }
#ifndef UNDERSTUDY_NETWORK_NETWORK_CONFIG_H_
#define UNDERSTUDY_NETWORK_NETWORK_CONFIG_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"

namespace understudy::network {

struct NetworkConfig {
  std::string tap;
  std::string netns;
  std::string mac;

  // Absent section: no value (the VM has no NIC).
  static Result<std::optional<NetworkConfig>> FromJson(const nlohmann::json& agent_config);
};

}  // namespace understudy::network

#endif  // UNDERSTUDY_NETWORK_NETWORK_CONFIG_H_
