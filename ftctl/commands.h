// ftctl's commands, each a function returning the process exit status.
#ifndef UNDERSTUDY_FTCTL_COMMANDS_H_
#define UNDERSTUDY_FTCTL_COMMANDS_H_

#include <string>
#include <vector>


namespace understudy::ftctl {

// Each command returns the process exit status: 0 success, 1 failure, 2 usage.
int StatusCommand(const std::vector<std::string>& dirs);
int MetricsCommand(const std::vector<std::string>& dirs);
int FailbackCommand(const std::vector<std::string>& agents);
int DrillCommand(const std::string& kind, const std::vector<std::string>& agents, const std::string& lab, bool as_json);

}  // namespace understudy::ftctl

#endif  // UNDERSTUDY_FTCTL_COMMANDS_H_
