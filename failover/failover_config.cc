#include "failover/failover_config.h"

#include <unistd.h>

#include <functional>

namespace understudy::failover {

Result<FailoverConfig> FailoverConfig::FromJson(const nlohmann::json& agent_config) {
  FailoverConfig config;
  char hostname[256] = "localhost";
  ::gethostname(hostname, sizeof(hostname) - 1);
  try {
    config.name = agent_config.value("name", std::string(hostname));
    nlohmann::json failover = agent_config.value("failover", nlohmann::json::object());
    config.monitor.udp_listen = failover.value("heartbeat_listen", config.monitor.udp_listen);
    config.monitor.interval = std::chrono::milliseconds(failover.value("interval_ms", 20));
    config.monitor.budget = std::chrono::milliseconds(failover.value("budget_ms", 150));
    config.monitor.pair_id = std::hash<std::string>{}(failover.value("pair", std::string("default")));
    config.arbiter = failover.value("arbiter", config.arbiter);
  } catch (const nlohmann::json::exception& error) {
    return Status::InvalidArgument(std::string("failover configuration: ") + error.what());
  }
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
