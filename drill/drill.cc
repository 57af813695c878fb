#include "drill/drill.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "common/deadline.h"
#include "common/process_space.h"
#include "console/console_follower.h"
#include "control/control_server.h"
#include "drill/lab_topology.h"
#include "drill/network_faults.h"
#include "failover/transition_log.h"

namespace understudy::drill {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct KindName {
  DrillKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {{DrillKind::kKillPrimary, "kill-primary"},
                                   {DrillKind::kKillSecondary, "kill-secondary"},
                                   {DrillKind::kKillQemu, "kill-qemu"},
                                   {DrillKind::kPartition, "partition"},
                                   {DrillKind::kSlowLink, "slow-link"}};

Result<json> AgentStatus(const std::string& dir) {
  // Generous: a busy agent answers late; a dead one refuses at once, so this never slows the
  // watcher noticing a kill.
  return control::AgentStatus(dir, Deadline::AfterMillis(2000));
}

// What the observer saw: every console line with when it arrived.
class Observer {
 public:
  Observer(const std::string& primary_dir, const std::string& secondary_dir)
      : follower_({primary_dir + "/console.sock", secondary_dir + "/console.sock"}) {
    thread_ = std::thread([this] { Follow(); });
  }
  ~Observer() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::pair<Clock::time_point, std::string>> Lines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  void Follow() {
    while (!stop_.load()) {
      Result<std::string> line = follower_.ReadLine(Deadline::AfterMillis(50));
      if (!line.ok()) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back(Clock::now(), *line);
    }
  }

  console::ConsoleFollower follower_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::pair<Clock::time_point, std::string>> lines_;
  std::thread thread_;
};

// The latest status of each agent, polled; an agent that does not answer is "unreachable".
class StateWatcher {
 public:
  StateWatcher(std::string primary_dir, std::string secondary_dir)
      : dirs_{{"primary", std::move(primary_dir)}, {"secondary", std::move(secondary_dir)}} {
    thread_ = std::thread([this] { Poll(); });
  }
  ~StateWatcher() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::string StateOf(const std::string& agent) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = latest_.find(agent);
    return found == latest_.end() ? "unknown" : found->second.value("state", "unreachable");
  }
  json StatusOf(const std::string& agent) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = latest_.find(agent);
    return found == latest_.end() ? json::object() : found->second;
  }

 private:
  void Poll() {
    while (!stop_.load()) {
      for (const auto& [agent, dir] : dirs_) {
        Result<json> status = AgentStatus(dir);
        std::lock_guard<std::mutex> lock(mutex_);
        if (status.ok()) {
          latest_[agent] = *status;
        } else {
          json gone = latest_[agent];
          gone["state"] = "unreachable";
          latest_[agent] = gone;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  const std::map<std::string, std::string> dirs_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::map<std::string, json> latest_;
  std::thread thread_;
};

double MillisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

bool ParseNumber(const std::string& line, uint64_t& number) {
  if (line.empty() || line.size() > 19) return false;
  for (char c : line) {
    if (c < '0' || c > '9') return false;
  }
  number = std::stoull(line);
  return true;
}

void Kill(const json& status, const char* field) {
  int pid = status.value(field, 0);
  if (pid > 0) ::kill(pid, SIGKILL);
}

// The survivor's state once the fault has been handled, and the agent that should reach it.
struct Expectation {
  std::string survivor;  // "primary" or "secondary"
  std::string settled_state;
};

Expectation ExpectedOutcome(DrillKind kind) {
  switch (kind) {
    case DrillKind::kKillSecondary:
      return {"primary", "unprotected"};
    case DrillKind::kSlowLink:
      return {"primary", "protected"};
    default:
      return {"secondary", "promoted"};
  }
}

// The primary's status once it says "protected", or the last status seen when the wait ends:
// the caller refuses to drill a pair that is not protected.
Result<json> WaitForProtectedPrimary(const DrillOptions& options) {
  const Deadline deadline = Deadline::After(options.wait_for_protected);
  for (;;) {
    UNDERSTUDY_ASSIGN_OR_RETURN(json primary, AgentStatus(options.primary_dir));
    if (primary.value("state", "") == "protected" || deadline.Expired()) return primary;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

Result<DrillKind> ParseDrillKind(const std::string& name) {
  for (const KindName& entry : kKindNames) {
    if (name == entry.name) return entry.kind;
  }
  return Status::InvalidArgument("unknown drill '" + name +
                                 "' (kill-primary, kill-secondary, kill-qemu, partition, slow-link)");
}

std::string DrillKindName(DrillKind kind) {
  for (const KindName& entry : kKindNames) {
    if (kind == entry.kind) return entry.name;
  }
  return "unknown";
}

Result<DrillReport> RunDrill(DrillKind kind, const DrillOptions& options) {
  bool network = kind == DrillKind::kPartition || kind == DrillKind::kSlowLink;
  std::optional<LabTopology> lab;
  if (network) {
    if (options.lab_path.empty()) {
      return Status::InvalidArgument(DrillKindName(kind) + " injects a network fault and needs --lab (a lab description)");
    }
    UNDERSTUDY_ASSIGN_OR_RETURN(lab, LabTopology::Load(options.lab_path));
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(json primary, WaitForProtectedPrimary(options));
  UNDERSTUDY_ASSIGN_OR_RETURN(json secondary, AgentStatus(options.secondary_dir));
  bool kills = kind == DrillKind::kKillPrimary || kind == DrillKind::kKillSecondary || kind == DrillKind::kKillQemu;
  const json& victim = kind == DrillKind::kKillSecondary ? secondary : primary;
  if (kills && victim.value("process_space", "") != ThisProcessSpace()) {
    return Status::FailedPrecondition(
        "the agent to kill runs on another host or PID namespace (" + victim.value("process_space", "?") +
        ", this is " + ThisProcessSpace() + "): its pids mean nothing here; run the drill on that host");
  }
  if (primary.value("state", "") != "protected") {
    return Status::FailedPrecondition("the primary is '" + primary.value("state", "?") + "', not protected after waiting " +
                                      std::to_string(options.wait_for_protected.count()) + " ms: nothing to drill");
  }

  Observer observer(options.primary_dir, options.secondary_dir);
  StateWatcher watcher(options.primary_dir, options.secondary_dir);
  std::this_thread::sleep_for(options.watch_before);
  primary = watcher.StatusOf("primary");
  secondary = watcher.StatusOf("secondary");

  DrillReport report;
  report.kind = kind;
  const Clock::time_point fault = Clock::now();
  const int64_t fault_unix_ms = failover::UnixMillisNow();
  auto event = [&](const std::string& what) { report.timeline.push_back({MillisBetween(fault, Clock::now()), what}); };
  switch (kind) {
    case DrillKind::kKillPrimary:
      Kill(primary, "qemu_pid");
      Kill(primary, "pid");
      event("SIGKILL primary agent (pid " + std::to_string(primary.value("pid", 0)) + ") and its QEMU (pid " +
            std::to_string(primary.value("qemu_pid", 0)) + ")");
      break;
    case DrillKind::kKillSecondary:
      Kill(secondary, "standby_qemu_pid");
      Kill(secondary, "pid");
      event("SIGKILL secondary agent (pid " + std::to_string(secondary.value("pid", 0)) + ") and its standby QEMU");
      break;
    case DrillKind::kKillQemu:
      Kill(primary, "qemu_pid");
      event("SIGKILL the primary's QEMU (pid " + std::to_string(primary.value("qemu_pid", 0)) + ")");
      break;
    case DrillKind::kPartition:
      UNDERSTUDY_RETURN_IF_ERROR(IsolateHost(*lab, "primary"));
      event("isolated the primary's host from every network");
      break;
    case DrillKind::kSlowLink:
      UNDERSTUDY_RETURN_IF_ERROR(SlowPort(*lab, "primary", "replication", options.slow_rate));
      UNDERSTUDY_RETURN_IF_ERROR(SlowPort(*lab, "secondary", "replication", options.slow_rate));
      event("replication link limited to " + options.slow_rate);
      break;
  }

  // Wait for the survivor to settle (for slow-link: for the slow period to pass).
  const Expectation expected = ExpectedOutcome(kind);
  std::map<std::string, std::string> last_state = {{"primary", primary.value("state", "?")},
                                                   {"secondary", secondary.value("state", "?")}};
  Clock::time_point settle_until = fault + (kind == DrillKind::kSlowLink ? options.slow_for : options.settle_timeout);
  bool settled = false;
  while (Clock::now() < settle_until) {
    for (auto& [agent, state] : last_state) {
      std::string now = watcher.StateOf(agent);
      // State changes come from the agents' transition logs below; only a silence is ours.
      if (now != state && (now == "unreachable" || state == "unreachable")) {
        event(agent + (now == "unreachable" ? ": control socket no longer answers" : ": answers again (" + now + ")"));
      }
      state = now;
    }
    if (kind != DrillKind::kSlowLink && last_state[expected.survivor] == expected.settled_state) {
      settled = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (kind == DrillKind::kSlowLink) {
    settled = last_state["primary"] == "protected" || last_state["primary"] == "degraded";
    Status healed = Heal(*lab);
    event(healed.ok() ? "replication link restored" : "healing the link failed: " + healed.ToString());
  }
  std::this_thread::sleep_for(options.watch_after);
  if (kind == DrillKind::kPartition) {
    Status healed = Heal(*lab);
    event(healed.ok() ? "network healed" : "healing the network failed: " + healed.ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    event("primary after healing: " + watcher.StateOf("primary"));
  }
  watcher.Stop();
  observer.Stop();

  // The agents' own transition logs (wall-clock stamps) are more precise than polling: they
  // give the timeline its state changes, and detection and promotion their times.
  for (const std::string agent : {"primary", "secondary"}) {
    for (const json& transition : watcher.StatusOf(agent).value("transitions", json::array())) {
      int64_t at = transition.value("at_unix_ms", int64_t{0});
      if (at < fault_unix_ms) continue;
      double since_fault = static_cast<double>(at - fault_unix_ms);
      std::string to = transition.value("to", "");
      std::string why = transition.value("why", "");
      report.timeline.push_back(
          {since_fault, agent + ": " + transition.value("from", "?") + " -> " + to + (why.empty() ? "" : " (" + why + ")")});
      if (agent != expected.survivor) continue;
      if (to == "failing-over" && !report.detection_ms) report.detection_ms = since_fault;
      if ((to == "promoted" || to == "unprotected") && !report.promotion_ms) report.promotion_ms = since_fault;
    }
  }
  std::stable_sort(report.timeline.begin(), report.timeline.end(),
                   [](const DrillEvent& a, const DrillEvent& b) { return a.at_ms < b.at_ms; });

  // The observer's view: continuity, the first new line, the longest silence after the fault.
  std::vector<std::pair<Clock::time_point, std::string>> lines = observer.Lines();
  report.lines_seen = lines.size();
  std::optional<uint64_t> previous;
  std::string violation;
  Clock::time_point last_arrival = fault;
  bool seen_after = false;
  for (const auto& [arrived, line] : lines) {
    uint64_t number = 0;
    if (ParseNumber(line, number)) {
      if (previous && number != *previous + 1 && violation.empty()) {
        violation = "line " + std::to_string(number) + " followed " + std::to_string(*previous);
      }
      previous = number;
    }
    if (arrived < fault) continue;
    if (!seen_after) {
      report.first_new_output_ms = MillisBetween(fault, arrived);
      seen_after = true;
    }
    report.output_gap_ms = std::max(report.output_gap_ms, MillisBetween(last_arrival, arrived));
    last_arrival = arrived;
  }
  bool output_continued = seen_after;
  report.continuity_held = violation.empty() && output_continued;
  if (kind == DrillKind::kSlowLink) {
    report.outcome = settled ? "no failover (as it should be)" : "the pair left protection: " + last_state["primary"];
  } else {
    report.outcome = settled ? expected.survivor + " " + expected.settled_state
                             : expected.survivor + " never became " + expected.settled_state + " (now " +
                                   last_state[expected.survivor] + ")";
  }
  if (!violation.empty()) {
    report.verdict = "continuity VIOLATED: " + violation;
  } else if (!output_continued) {
    report.verdict = "continuity VIOLATED: no output after the fault";
  } else if (!settled) {
    report.continuity_held = false;
    report.verdict = "FAILED: " + report.outcome;
  } else {
    report.verdict = "continuity held: every line exactly once, in order";
  }
  return report;
}

json DrillReport::ToJson() const {
  json events = json::array();
  for (const DrillEvent& entry : timeline) events.push_back({{"at_ms", entry.at_ms}, {"what", entry.what}});
  auto optional = [](const std::optional<double>& value) { return value ? json(*value) : json(nullptr); };
  return {{"drill", DrillKindName(kind)},
          {"timeline", events},
          {"outcome", outcome},
          {"detection_ms", optional(detection_ms)},
          {"promotion_ms", optional(promotion_ms)},
          {"first_new_output_ms", optional(first_new_output_ms)},
          {"output_gap_ms", output_gap_ms},
          {"lines_seen", lines_seen},
          {"continuity_held", continuity_held},
          {"verdict", verdict}};
}

std::string DrillReport::ToText() const {
  std::string text = "drill " + DrillKindName(kind) + "\n  timeline (ms after the fault):\n";
  char line[512];
  for (const DrillEvent& entry : timeline) {
    std::snprintf(line, sizeof(line), "    %8.1f  %s\n", entry.at_ms, entry.what.c_str());
    text += line;
  }
  auto millis = [](const std::optional<double>& value) {
    if (!value) return std::string("-");
    char number[32];
    std::snprintf(number, sizeof(number), "%.0f ms", *value);
    return std::string(number);
  };
  std::snprintf(line, sizeof(line),
                "  outcome: %s\n  detection %s, promotion %s, first new output %s, longest output gap %.0f ms "
                "(%llu lines observed)\n  verdict: %s\n",
                outcome.c_str(), millis(detection_ms).c_str(), millis(promotion_ms).c_str(),
                millis(first_new_output_ms).c_str(), output_gap_ms, static_cast<unsigned long long>(lines_seen),
                verdict.c_str());
  return text + line;
}

}  // namespace understudy::drill
