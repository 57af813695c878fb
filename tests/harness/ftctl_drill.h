// Runs `ftctl drill KIND` against an AgentPair, the way an operator would, and returns its
// JSON report (drill/drill.h). The drill's own exit status is in "exit_status".
#ifndef UNDERSTUDY_TESTS_HARNESS_FTCTL_DRILL_H_
#define UNDERSTUDY_TESTS_HARNESS_FTCTL_DRILL_H_

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "tests/harness/agent_pair.h"

namespace understudy::testing {

Result<nlohmann::json> RunFtctlDrill(const std::string& kind, const AgentPair& pair);
// The same against the agents in these runtime directories (after roles moved: a promoted
// secondary protecting the VM is the primary now).
Result<nlohmann::json> RunFtctlDrill(const std::string& kind, const AgentPair& pair, const std::string& primary_dir,
                                     const std::string& secondary_dir);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_FTCTL_DRILL_H_
