// ReprotectConfig: where the agent that promoted a standby finds a new secondary to protect
// the VM again (secondary/secondary_agent.h hands the promoted VM to a VmOwner,
// primary/vm_owner.h, which dials this address while the VM runs alone).
//
// Configuration, in the secondary's file:
//   "reprotect": {
//     "secondary": "tls://10.0.0.1:7400",  where the new secondary will listen
//     "checkpoint_interval_ms": 50, "max_in_flight": 4,
//     "tls": {...} | "curve": {...} | "insecure": true   dialling options; default: the
//   }                                                      agent's own (TLS certificates
//                                                          serve both directions)
#ifndef UNDERSTUDY_PRIMARY_REPROTECT_CONFIG_H_
#define UNDERSTUDY_PRIMARY_REPROTECT_CONFIG_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "transport/channel.h"

namespace understudy::primary {

struct ReprotectConfig {
  std::string secondary_uri;
  transport::ChannelOptions channel;
  uint32_t checkpoint_interval_ms = 50;
  uint32_t max_in_flight = 4;

  // Reads "reprotect" from an agent's configuration; `agent_channel` is the default for
  // dialling. Absent section: no value.
  static Result<std::optional<ReprotectConfig>> FromJson(const nlohmann::json& agent_config,
                                                          const transport::ChannelOptions& agent_channel);
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_REPROTECT_CONFIG_H_
