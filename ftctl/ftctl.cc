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
#include <ctime>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "console/console_follower.h"
#include "control/control_server.h"
#include "drill/drill.h"
#include "failover/http_client.h"

namespace {

using namespace understudy;
using nlohmann::json;

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
    std::printf("  checkpoints %s (%s/s)  pause p50 %s ms  p99 %s ms  commit p50 %s ms  p99 %s ms\n",
                Number(status["checkpoints"]).c_str(), Number(status["checkpoints_per_second"], 1).c_str(),
                Number(status["pause_ms_p50"], 2).c_str(), Number(status["pause_ms_p99"], 2).c_str(),
                Number(status["commit_ms_p50"], 1).c_str(), Number(status["commit_ms_p99"], 1).c_str());
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
    const json& verified = status["last_verification"];
    if (verified.is_object()) {
      std::printf("  standby verification: %s epoch %s, %s s ago (%s ms)%s%s\n",
                  verified.value("succeeded", false) ? "ok," : "FAILED at", Number(verified["epoch"]).c_str(),
                  Number(verified["age_s"]).c_str(), Number(verified["duration_ms"]).c_str(),
                  verified.value("succeeded", false) ? "" : ": ", verified.value("error", "").substr(0, 200).c_str());
    } else {
      std::printf("  standby verification: not yet\n");
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

// Prints an agent's /metrics without the histogram buckets and the inactive pair states,
// with the labels every series shares (vm, role, host) said once, and each histogram's mean.
int PrintMetrics(const std::string& dir) {
  Result<json> status = AgentStatus(dir);
  if (!status.ok()) {
    std::printf("%s  unreachable: %s\n", dir.c_str(), status.status().ToString().c_str());
    return 1;
  }
  std::string address = status->value("metrics_address", "");
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    std::printf("%s  serves no metrics\n", dir.c_str());
    return 1;
  }
  Result<failover::HttpResponse> scrape = failover::HttpGet(address.substr(0, colon),
                                                            static_cast<uint16_t>(std::stoi(address.substr(colon + 1))),
                                                            "/metrics", Deadline::AfterMillis(2000));
  if (!scrape.ok() || scrape->status != 200) {
    std::printf("%s  /metrics at %s failed: %s\n", dir.c_str(), address.c_str(),
                scrape.ok() ? ("HTTP " + std::to_string(scrape->status)).c_str() : scrape.status().ToString().c_str());
    return 1;
  }
  std::printf("%s  (%s, http://%s/metrics)\n", dir.c_str(), status->value("role", "?").c_str(), address.c_str());
  std::map<std::string, double> sums, counts;
  std::istringstream lines(scrape->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("understudy_", 0) != 0 || line.find("_bucket{") != std::string::npos) continue;
    size_t space = line.rfind(' ');
    std::string series = line.substr(0, space);
    double value = std::atof(line.c_str() + space + 1);
    if (series.rfind("understudy_pair_state{", 0) == 0 && value == 0) continue;
    std::string name = series.substr(0, series.find('{'));
    if (name.size() > 4 && name.compare(name.size() - 4, 4, "_sum") == 0) {
      sums[name.substr(0, name.size() - 4)] += value;
      continue;
    }
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_count") == 0) {
      counts[name.substr(0, name.size() - 6)] += value;
      continue;
    }
    // Keep only the labels that tell series apart (state, path, stream, result).
    std::string labels;
    for (const char* label : {"state", "path", "stream", "result"}) {
      size_t at = series.find(std::string(label) + "=\"");
      if (at == std::string::npos) continue;
      size_t end = series.find('"', at + std::strlen(label) + 2);
      labels += (labels.empty() ? "" : ",") + series.substr(at, end - at + 1);
    }
    std::printf("  %-52s %g\n", (name + (labels.empty() ? "" : "{" + labels + "}")).c_str(), value);
  }
  for (const auto& [name, count] : counts) {
    double mean = count > 0 ? sums[name] / count : 0;
    std::printf("  %-52s %g observations, mean %g\n", name.c_str(), count, mean);
  }
  return 0;
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
  if (command == "metrics") {
    int failures = 0;
    for (const std::string& dir : agents) failures += PrintMetrics(dir);
    return failures == 0 ? 0 : 1;
  }

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
