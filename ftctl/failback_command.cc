// ftctl failback: a planned switchover to the secondary's host.
#include <chrono>
#include <cstdio>
#include <thread>

#include "control/control_server.h"
#include "ftctl/commands.h"

namespace understudy::ftctl {

using nlohmann::json;

// The planned switchover: the primary steps down (guest stopped, fenced, record untouched),
// then the secondary is asked to promote and wins the record. Nothing unacknowledged was
// released by the primary, so the standby continues the console exactly where it should.
int FailbackCommand(const std::vector<std::string>& agents) {
  if (agents.size() != 2) {
    std::fprintf(stderr, "failback: give the current primary's and then the secondary's --agent DIR\n");
    return 2;
  }
  Result<json> from = control::AgentStatus(agents[0], Deadline::AfterMillis(2000));
  Result<json> to = control::AgentStatus(agents[1], Deadline::AfterMillis(2000));
  if (!from.ok() || !to.ok()) {
    std::fprintf(stderr, "failback: cannot reach both agents: %s\n",
                 (!from.ok() ? from.status() : to.status()).ToString().c_str());
    return 1;
  }
  if (from->value("role", "") != "primary" || from->value("state", "") != "protected" ||
      to->value("role", "") != "secondary" || to->value("state", "") != "standby-ready") {
    std::fprintf(stderr, "failback needs a protected primary and a ready standby; found %s %s and %s %s\n",
                 from->value("role", "?").c_str(), from->value("state", "?").c_str(), to->value("role", "?").c_str(),
                 to->value("state", "?").c_str());
    return 1;
  }
  auto started = std::chrono::steady_clock::now();
  Result<json> stepped = control::CallControl(agents[0] + "/control.sock", {{"command", "step_down"}},
                                              Deadline::AfterMillis(5000));
  if (!stepped.ok()) {
    std::fprintf(stderr, "failback: the primary did not step down: %s\n", stepped.status().ToString().c_str());
    return 1;
  }
  std::printf("primary %s stepped down (guest stopped, fenced)\n", agents[0].c_str());
  Result<json> promote = control::CallControl(agents[1] + "/control.sock", {{"command", "promote"}}, Deadline::AfterMillis(2000));
  if (!promote.ok()) {
    std::fprintf(stderr, "failback: the secondary refused to promote: %s; the VM is stopped, promote it with "
                         "`ftctl promote --agent %s`\n",
                 promote.status().ToString().c_str(), agents[1].c_str());
    return 1;
  }
  Deadline deadline = Deadline::AfterMillis(20000);
  std::string state;
  while (!deadline.Expired()) {
    Result<json> status = control::AgentStatus(agents[1], Deadline::AfterMillis(2000));
    state = status.ok() ? status->value("state", "?") : "unreachable";
    if (state == "promoted" || state == "fenced" || state == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (state != "promoted") {
    std::fprintf(stderr, "failback: the secondary ended up '%s'; see its log\n", state.c_str());
    return 1;
  }
  std::printf("failback done in %.0f ms: the VM runs on %s\n", elapsed, agents[1].c_str());
  return 0;
}

}  // namespace understudy::ftctl
