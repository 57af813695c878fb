// ftctl: the operator's tool. Talks to agents only through their control API and console
// sockets; knows no agent internals.
//
//   ftctl status  --agent DIR [--agent DIR]     one readable screen per agent
//   ftctl console --agent DIR [--agent DIR] [--lines N] [--seconds S]
//                                               the VM's console, followed across failovers
//   ftctl promote --agent DIR                   promote a secondary now
//   ftctl metrics --agent DIR [--agent DIR]     the key numbers from each agent's /metrics
//   ftctl failback --agent PRIMARY_DIR --agent SECONDARY_DIR
//                                               planned switchover: the VM moves to the
//                                               secondary's host (back home after a failover
//                                               and re-protection), no line lost or repeated
//   ftctl drill KIND --agent PRIMARY_DIR --agent SECONDARY_DIR [--lab FILE] [--json]
//                                               rehearse a failure on the live pair
//                                               (drill/drill.h); exit 0 iff continuity held
//
// DIR is an agent's runtime_dir (it holds control.sock and console.sock).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "console/console_follower.h"
#include "control/control_server.h"
#include "ftctl/commands.h"

namespace {

using namespace understudy;

int Usage() {
  std::fprintf(stderr,
               "usage:\n"
               "  ftctl status  --agent DIR [--agent DIR]\n"
               "  ftctl console --agent DIR [--agent DIR] [--lines N] [--seconds S]\n"
               "  ftctl promote --agent DIR\n"
               "  ftctl metrics --agent DIR [--agent DIR]\n"
               "  ftctl failback --agent PRIMARY_DIR --agent SECONDARY_DIR\n"
               "  ftctl drill kill-primary|kill-secondary|kill-qemu|partition|slow-link\n"
               "        --agent PRIMARY_DIR --agent SECONDARY_DIR [--lab FILE] [--json]\n"
               "DIR is an agent's runtime_dir.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string command = argv[1];
  std::vector<std::string> agents;
  long lines = -1;
  double seconds = -1;
  std::string drill_kind, lab;
  bool as_json = false;
  int first_option = 2;
  if (command == "drill") {
    if (argc < 3) return Usage();
    drill_kind = argv[2];
    first_option = 3;
  }
  for (int i = first_option; i < argc; ++i) {
    if (std::strcmp(argv[i], "--lab") == 0 && i + 1 < argc) {
      lab = argv[++i];
    } else if (std::strcmp(argv[i], "--json") == 0) {
      as_json = true;
    } else if (std::strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
      agents.push_back(argv[++i]);
    } else if (std::strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
      lines = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      return Usage();
    }
  }
  if (agents.empty()) return Usage();
  if (command == "drill") return ftctl::DrillCommand(drill_kind, agents, lab, as_json);
  if (command == "failback") return ftctl::FailbackCommand(agents);
  if (command == "metrics") return ftctl::MetricsCommand(agents);
  if (command == "status") return ftctl::StatusCommand(agents);
  if (command == "promote") {
    Result<nlohmann::json> reply = control::CallControl(agents[0] + "/control.sock", {{"command", "promote"}}, Deadline::AfterMillis(2000));
    if (!reply.ok()) {
      std::fprintf(stderr, "promote: %s\n", reply.status().ToString().c_str());
      return 1;
    }
    std::printf("%s\n", reply->dump().c_str());
    return 0;
  }
  if (command == "console") {
    std::vector<std::string> sockets;
    for (const std::string& dir : agents) sockets.push_back(dir + "/console.sock");
    console::ConsoleFollower follower(sockets);
    Deadline end = seconds < 0 ? Deadline::After(std::chrono::hours(24 * 365))
                               : Deadline::After(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    long printed = 0;
    while (lines < 0 || printed < lines) {
      Result<std::string> line = follower.ReadLine(end);
      if (!line.ok()) break;
      std::printf("%s\n", line->c_str());
      std::fflush(stdout);
      ++printed;
    }
    return 0;
  }
  return Usage();
}
