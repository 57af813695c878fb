// What every ftctl command shares: reaching an agent's control API.
#ifndef UNDERSTUDY_FTCTL_COMMANDS_H_
#define UNDERSTUDY_FTCTL_COMMANDS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace understudy::ftctl {

// The agent's status (its control API's "status"), from its runtime directory.
Result<nlohmann::json> AgentStatus(const std::string& dir);

// Each command returns the process exit status: 0 success, 1 failure, 2 usage.
int StatusCommand(const std::vector<std::string>& dirs);
int MetricsCommand(const std::vector<std::string>& dirs);
int FailbackCommand(const std::vector<std::string>& agents);
int DrillCommand(const std::string& kind, const std::vector<std::string>& agents, const std::string& lab, bool as_json);

}  // namespace understudy::ftctl

#endif  // UNDERSTUDY_FTCTL_COMMANDS_H_
