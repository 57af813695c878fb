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

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_FTCTL_DRILL_H_
