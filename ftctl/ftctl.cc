// ftctl: the operator's tool. Talks to agents only through their control API and console
// sockets; knows no agent internals.
//
//   ftctl status  --agent DIR [--agent DIR]     one readable screen per agent
//   ftctl console --agent DIR [--agent DIR] [--lines N] [--seconds S]
//                                               the VM's console, followed across failovers
//   ftctl promote --agent DIR                   promote a secondary now
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
#include <ctime>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "console/console_follower.h"
#include "control/control_server.h"
#include "drill/drill.h"

namespace {

using namespace understudy;
using nlohmann::json;

int Usage() {
  std::fprintf(stderr,
               "usage:\n"
               "  ftctl status  --agent DIR [--agent DIR]\n"
               "  ftctl console --agent DIR [--agent DIR] [--lines N] [--seconds S]\n"
               "  ftctl promote --agent DIR\n"
               "  ftctl failback --agent PRIMARY_DIR --agent SECONDARY_DIR\n"
               "  ftctl drill kill-primary|kill-secondary|kill-qemu|partition|slow-link\n"
               "        --agent PRIMARY_DIR --agent SECONDARY_DIR [--lab FILE] [--json]\n"
               "DIR is an agent's runtime_dir.\n");
  return 2;
}

std::string Number(const json& value, int decimals = 0) {
  if (!value.is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value.get<double>());
  return text;
}

std::string Bytes(const json& value) {
  if (!value.is_number()) return "-";
  double bytes = value.get<double>();
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char text[64];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

void PrintStatus(const std::string& dir, const json& status) {
  std::string role = status.value("role", "?");
  std::printf("%s  %-9s  state: %s\n", dir.c_str(), role.c_str(), status.value("state", "?").c_str());
  if (role == "primary") {
    std::printf("  vm %-12s epoch %s  committed %s  in flight %s\n", status.value("vm", "?").c_str(),
                Number(status["epoch"]).c_str(), Number(status["committed_epoch"]).c_str(),
                Number(status["in_flight"]).c_str());
    std::printf("  checkpoints %s (%s/s)  pause p50 %s ms  p99 %s ms\n", Number(status["checkpoints"]).c_str(),
                Number(status["checkpoints_per_second"], 1).c_str(), Number(status["pause_ms_p50"], 2).c_str(),
                Number(status["pause_ms_p99"], 2).c_str());
    std::printf("  sent %s  compression %sx  console held %s, released %s\n", Bytes(status["bytes_sent"]).c_str(),
                Number(status["compression_ratio"], 1).c_str(), Bytes(status["console_held_bytes"]).c_str(),
                Bytes(status["console_released_bytes"]).c_str());
  } else {
    std::printf("  primary %s  committed epoch %s  rejected %s  received %s\n",
                status.value("primary", "-").c_str(), Number(status["committed_epoch"]).c_str(),
                Number(status["rejected_checkpoints"]).c_str(), Bytes(status["bytes_received"]).c_str());
    if (status.value("promotion_ms", 0.0) > 0) {
      std::printf("  promoted in %s ms\n", Number(status["promotion_ms"], 1).c_str());
    }
  }
  if (status.contains("peer")) {
    std::printf("  peer %s  heartbeat rtt %s ms, %s lost  owner '%s' (record revision %s)\n",
                status.value("peer", "?").c_str(), Number(status["heartbeat_rtt_ms"], 2).c_str(),
                Number(status["heartbeat_lost"]).c_str(), status.value("owner_name", "?").c_str(),
                Number(status["record_revision"]).c_str());
  }
  const json transitions = status.value("transitions", json::array());
  // The last few state changes, with local wall-clock times: what happened, and when.
  for (size_t i = transitions.size() > 3 ? transitions.size() - 3 : 0; i < transitions.size(); ++i) {
    const json& change = transitions[i];
    std::time_t seconds = static_cast<std::time_t>(change.value("at_unix_ms", int64_t{0}) / 1000);
    std::tm local{};
    ::localtime_r(&seconds, &local);
    char when[32];
    std::strftime(when, sizeof(when), "%H:%M:%S", &local);
    std::string why = change.value("why", "");
    std::printf("  %s.%03lld  %s -> %s%s\n", when, static_cast<long long>(change.value("at_unix_ms", int64_t{0}) % 1000),
                change.value("from", "?").c_str(), change.value("to", "?").c_str(),
                why.empty() ? "" : (" (" + why + ")").c_str());
  }
  std::string error = status.value("last_error", "");
  if (!error.empty()) std::printf("  last error: %s\n", error.c_str());
}

}  // namespace

int RunDrillCommand(const std::string& kind_name, const std::vector<std::string>& agents, const std::string& lab,
                    bool as_json) {
  Result<drill::DrillKind> kind = drill::ParseDrillKind(kind_name);
  if (!kind.ok()) {
    std::fprintf(stderr, "drill: %s\n", kind.status().message().c_str());
    return 2;
  }
  if (agents.size() != 2) {
    std::fprintf(stderr, "drill: give the primary's and then the secondary's --agent DIR\n");
    return 2;
  }
  drill::DrillOptions options;
  options.primary_dir = agents[0];
  options.secondary_dir = agents[1];
  options.lab_path = lab;
  if (!as_json) std::printf("drill %s: watching the pair, then injecting the fault...\n", kind_name.c_str());
  std::fflush(stdout);
  Result<drill::DrillReport> report = drill::RunDrill(*kind, options);
  if (!report.ok()) {
    std::fprintf(stderr, "drill %s could not run: %s\n", kind_name.c_str(), report.status().ToString().c_str());
    return 2;
  }
  std::printf("%s\n", as_json ? report->ToJson().dump().c_str() : report->ToText().c_str());
  return report->continuity_held ? 0 : 1;
}

Result<json> AgentStatus(const std::string& dir) {
  return control::CallControl(dir + "/control.sock", {{"command", "status"}}, Deadline::AfterMillis(2000));
}

// The planned switchover: the primary steps down (guest stopped, fenced, record untouched),
// then the secondary is asked to promote and wins the record. Nothing unacknowledged was
// released by the primary, so the standby continues the console exactly where it should.
int RunFailback(const std::vector<std::string>& agents) {
  if (agents.size() != 2) {
    std::fprintf(stderr, "failback: give the current primary's and then the secondary's --agent DIR\n");
    return 2;
  }
  Result<json> from = AgentStatus(agents[0]);
  Result<json> to = AgentStatus(agents[1]);
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
    Result<json> status = AgentStatus(agents[1]);
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
  if (command == "drill") return RunDrillCommand(drill_kind, agents, lab, as_json);
  if (command == "failback") return RunFailback(agents);

  if (command == "status") {
    int failures = 0;
    for (const std::string& dir : agents) {
      Result<json> status = control::CallControl(dir + "/control.sock", {{"command", "status"}}, Deadline::AfterMillis(2000));
      if (!status.ok()) {
        std::printf("%s  unreachable: %s\n", dir.c_str(), status.status().ToString().c_str());
        ++failures;
        continue;
      }
      PrintStatus(dir, *status);
    }
    return failures == 0 ? 0 : 1;
  }
  if (command == "promote") {
    Result<json> reply = control::CallControl(agents[0] + "/control.sock", {{"command", "promote"}}, Deadline::AfterMillis(2000));
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
