#include "failover/failover_config.h"

#include <unistd.h>

#include <functional>

#include "common/json_fields.h"

namespace understudy::failover {

Result<FailoverConfig> FailoverConfig::FromJson(const nlohmann::json& agent_config) {
  FailoverConfig config;
  char hostname[256] = "localhost";
  ::gethostname(hostname, sizeof(hostname) - 1);
  constexpr std::string_view where = "failover configuration";
  UNDERSTUDY_ASSIGN_OR_RETURN(config.name, OptionalString(agent_config, "name", hostname, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* section, OptionalObject(agent_config, "failover", where));
  const nlohmann::json failover = section ? *section : nlohmann::json::object();
  UNDERSTUDY_ASSIGN_OR_RETURN(config.monitor.udp_listen,
                              OptionalString(failover, "heartbeat_listen", config.monitor.udp_listen, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t interval_ms, OptionalUint32(failover, "interval_ms", 20, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t budget_ms, OptionalUint32(failover, "budget_ms", 150, where));
  if (interval_ms == 0) return Status::InvalidArgument("failover.interval_ms must be positive");
  config.monitor.interval = std::chrono::milliseconds(interval_ms);
  config.monitor.budget = std::chrono::milliseconds(budget_ms);
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string pair, OptionalString(failover, "pair", "default", where));
  config.monitor.pair_id = std::hash<std::string>{}(pair);
  UNDERSTUDY_ASSIGN_OR_RETURN(config.arbiter, OptionalString(failover, "arbiter", config.arbiter, where));
  if (config.monitor.udp_listen.rfind("0.0.0.0:", 0) == 0) {
    // The bound address is what the peer is told to send its heartbeats to.
    return Status::InvalidArgument("failover.heartbeat_listen '" + config.monitor.udp_listen +
                                   "' must be this host's address on the heartbeat network, not a wildcard: the "
                                   "peer sends its heartbeats to exactly this address");
  }
  if (config.monitor.budget < 3 * config.monitor.interval) {
    return Status::InvalidArgument("failover.budget_ms must be at least three heartbeat intervals");
  }
  return config;
}

Result<std::unique_ptr<Arbiter>> FailoverConfig::MakeArbiterFor(const std::string& vm) const {
  if (arbiter == "none") return MakeNoArbiter();
  return MakeEtcdArbiter(arbiter, "/understudy/vms/" + vm + "/owner");
}

}  // namespace understudy::failover
