// Drills: rehearse a failure on a live protected pair and report what the outside world saw.
//
// A drill watches the pair through the same doors an operator has — the agents' control
// sockets and the VM's console (followed across failovers, as `ftctl console` does) — then
// injects one fault, waits for the pair to settle, and reports a timeline, how long detection,
// promotion and the observer's output gap took, and a verdict: did the console continue
// exactly as one machine that never failed would have printed it?
//
//   kill-primary    SIGKILL the primary agent and its QEMU (a host dying)
//   kill-secondary  SIGKILL the secondary agent and its standby QEMU
//   kill-qemu       SIGKILL only the primary's QEMU (the VM process crashing)
//   partition       isolate the primary's host from every network (needs a lab)
//   slow-link       limit the replication link to a low rate for a while (needs a lab);
//                   the right outcome is *no* failover and output that merely slows
//
// Continuity: the counter guests print consecutive integers, one per line, so every numeric
// line must be its predecessor + 1. Non-numeric lines are shown but cannot be judged.
#ifndef UNDERSTUDY_DRILL_DRILL_H_
#define UNDERSTUDY_DRILL_DRILL_H_

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace understudy::drill {

enum class DrillKind { kKillPrimary, kKillSecondary, kKillQemu, kPartition, kSlowLink };

Result<DrillKind> ParseDrillKind(const std::string& name);
std::string DrillKindName(DrillKind kind);

struct DrillOptions {
  std::string primary_dir;    // the primary agent's runtime_dir (control.sock, console.sock)
  std::string secondary_dir;  // the secondary's
  std::string lab_path;       // a lab description (drill/lab_topology.h); network drills need it
  // A pair that is briefly degraded (one heartbeat late on a loaded host) or still syncing is
  // waited for this long to become protected before the drill gives up on it.
  std::chrono::milliseconds wait_for_protected{10000};
  std::chrono::milliseconds watch_before{1000};  // observe the healthy pair first
  std::chrono::milliseconds watch_after{2000};   // keep observing once the pair settled
  std::chrono::milliseconds settle_timeout{20000};
  std::string slow_rate = "4mbit";                // slow-link: the replication link's rate
  std::chrono::milliseconds slow_for{3000};       // slow-link: how long the link stays slow
};

struct DrillEvent {
  double at_ms;  // since the fault
  std::string what;
};

struct DrillReport {
  DrillKind kind;
  std::vector<DrillEvent> timeline;
  std::string outcome;  // "secondary promoted", "primary unprotected", "no failover", ...
  std::optional<double> detection_ms;   // fault → the survivor starts contending
  std::optional<double> promotion_ms;   // fault → the survivor runs the VM (promoted/unprotected)
  std::optional<double> first_new_output_ms;  // fault → the first line the observer had not seen
  double output_gap_ms = 0;             // longest silence the observer saw after the fault
  uint64_t lines_seen = 0;
  bool continuity_held = false;
  std::string verdict;  // one sentence

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// Runs one drill. An error means the drill could not be run (pair not protected, no lab for a
// network drill); a drill that ran reports failures in its verdict.
Result<DrillReport> RunDrill(DrillKind kind, const DrillOptions& options);

}  // namespace understudy::drill

#endif  // UNDERSTUDY_DRILL_DRILL_H_
