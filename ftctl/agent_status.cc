#include "control/control_server.h"
#include "ftctl/commands.h"

namespace understudy::ftctl {

Result<nlohmann::json> AgentStatus(const std::string& dir) {
  return control::CallControl(dir + "/control.sock", {{"command", "status"}}, Deadline::AfterMillis(2000));
}

}  // namespace understudy::ftctl
