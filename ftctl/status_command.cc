// ftctl status: one screen per agent — state, latencies, heartbeats, standby verification,
// the last state changes.
#include <cstdio>
#include <ctime>

#include "control/control_server.h"
#include "ftctl/commands.h"

namespace understudy::ftctl {

using nlohmann::json;

namespace {

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
    const json& disk = status["disk"];
    if (disk.is_object()) {
      std::string copy = disk.value("initial_copy", "?");
      std::string progress;
      if (copy != "pending") {
        progress = " of " + Bytes(disk["initial_copy_bytes"]) +
                   (disk.value("initial_copy_committed", false)
                        ? ", committed"
                        : ", " + Number(json(100 * disk.value("initial_copy_progress", 0.0))) + "% read, not committed");
      }
      std::printf("  disk %s  written %s  not yet on the secondary %s  initial copy: %s%s\n",
                  Bytes(disk["size_bytes"]).c_str(), Bytes(disk["bytes_written"]).c_str(),
                  Bytes(disk["unacked_bytes"]).c_str(), copy.c_str(), progress.c_str());
    }
  } else {
    std::printf("  primary %s  committed epoch %s  rejected %s  received %s\n",
                status.value("primary", "-").c_str(), Number(status["committed_epoch"]).c_str(),
                Number(status["rejected_checkpoints"]).c_str(), Bytes(status["bytes_received"]).c_str());
    const json& disk = status["disk"];
    if (disk.is_object()) {
      std::printf("  disk copy %s  lineage %.8s  applied epoch %s, %s in all\n", Bytes(disk["size_bytes"]).c_str(),
                  disk.value("lineage", "-").c_str(), Number(disk["applied_epoch"]).c_str(),
                  Bytes(disk["bytes_applied"]).c_str());
    }
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
  if (status.contains("heartbeat_redundant")) {
    if (status.value("heartbeat_redundant", false)) {
      std::printf("  heartbeat networks: 2 (%s, %s)\n", status.value("heartbeat_address", "?").c_str(),
                  status.value("heartbeat_second_address", "?").c_str());
    } else {
      // A cut of the one heartbeat network silences every heartbeat path at once.
      std::printf("  heartbeat networks: 1 (%s): NO REDUNDANT HEARTBEAT PATH (failover.second_heartbeat adds one)\n",
                  status.value("heartbeat_address", "?").c_str());
    }
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

int StatusCommand(const std::vector<std::string>& dirs) {
  int failures = 0;
  for (const std::string& dir : dirs) {
    Result<json> status = control::AgentStatus(dir, Deadline::AfterMillis(2000));
    if (!status.ok()) {
      std::printf("%s  unreachable: %s\n", dir.c_str(), status.status().ToString().c_str());
      ++failures;
      continue;
    }
    PrintStatus(dir, *status);
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace understudy::ftctl
