// A seeded, deterministic simulator of a protected pair, in the manner of FoundationDB's
// simulation and TigerBeetle's VOPR: the real decision code (PairController, or today's
// decisions as LegacyController) runs against a model network, a model etcd, model VMs and
// an observer, under faults drawn from one seed. No threads, sockets or clocks: a run is a
// pure function of (schedule, options), so a failing seed replays exactly.
//
// The world: two hosts "a" and "b" (a starts as primary, b as secondary; a crashed host
// restarts as a fresh secondary, which re-protects whoever owns the VM). Three paths join
// them: the replication link (ordered, no loss: a TCP stream; a cut drops what is in
// flight) and two heartbeat paths (UDP: loss, duplication, reordering by jitter). Each host
// reaches etcd over its own arbiter LAN (cut: requests time out, outcome unknown; delay).
// The model etcd is linearizable: one record {owner, mode, revision}, a global revision
// counter, compare-and-swap on the revision; it may be down (refused: nothing applied),
// slow (applied, answered late — after the client's timeout the outcome is unknown), or
// apply a swap and lose its answer.
//
// The VM: the running copy produces, per epoch, one output token that depends on its state
// and on the run (a copy resumed elsewhere diverges, as a real guest does). A checkpoint
// carries the state and the tokens since the last ack. The observer records every release.
//
// Invariants, checked after every step (I1–I3) and at the end (I4, I5):
//  I1  all released output forms one history: each release of epoch e either extends the
//      history by exactly e or repeats the token already there.
//  I2  a promoted copy resumes from a checkpoint holding every epoch already released, and
//      holds the output of every epoch it then releases.
//  I3  nothing is promoted over a record in mode `stopped`, nor by a secondary its primary's
//      clean goodbye reached.
//  I4  when neither host crashed (and the VM did not die) and no operator took the VM down
//      (a clean stop, or a step-down whose promotion was never accepted), after the faults heal and etcd answers, some copy runs the VM: "both sides
//      fenced" or "VM down" does not last. When a host crashed, the same holds as long as a
//      live, unfenced agent holds a copy containing all released output.
//  I5  whenever a copy runs at the end, released output grew during the last
//      `kGrowthWindowMs` of the heal window.
//
// Thread safety: none; each run is independent (runs may go on separate threads).
#ifndef UNDERSTUDY_FAILOVER_SIM_SIMULATOR_H_
#define UNDERSTUDY_FAILOVER_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "failover/pair_controller.h"

namespace understudy::failover::sim {

enum class BrainKind { kPairController, kLegacy };

struct SimOptions {
  BrainKind brain = BrainKind::kPairController;
  TestFault fault = TestFault::kNone;  // a deliberately broken PairController
  bool no_arbiter = false;             // legacy only: "arbiter": "none" (always wins)
  bool restart_at_heal = true;         // crashed hosts come back (as fresh secondaries) when faults heal
  int64_t fault_window_ms = 3000;      // faults happen in [0, fault_window_ms)
  int64_t heal_ms = 5000;              // then everything heals for this long
  bool trace = false;                  // collect a step-by-step trace (for replays)
};

enum class FaultKind {
  kCutPath,         // path `path` between the hosts
  kHealPath,
  kChaosPath,       // heartbeat path: loss `value`%, duplication, jitter up to `extra` ms
  kCalmPath,
  kDelayPath,       // `value` ms more latency on `path`
  kCutLan,          // host `host` cannot reach etcd
  kHealLan,
  kSlowLan,         // `value` ms latency each way on host's arbiter LAN (0: normal)
  kEtcdDown,
  kEtcdUp,
  kEtcdSlow,        // etcd answers `value` ms late (0: normal)
  kEtcdLoseAnswer,  // the next compare-and-swap is applied, its answer lost
  kDupReplies,      // arbiter answers are delivered twice (value 1) or once (0)
  kCrash,           // host `host` crashes (its agent, VM and standby are gone)
  kRestart,         // host `host` restarts its agent as a fresh secondary (if crashed or ended)
  kCrashOnWelcome,  // host `host` crashes the moment it is next welcomed by a primary
  kVmDies,          // the VM (or standby) on host `host` dies
  kCleanStop,       // operator: stop the VM cleanly on host `host`
  kStepDown,        // operator: the primary on `host` steps down (failback, part 1)
  kPromote,         // operator: promote the standby on `host`
};
std::string_view FaultName(FaultKind kind);

struct Fault {
  int64_t at_ms = 0;
  FaultKind kind = FaultKind::kCutPath;
  int host = 0;
  int path = 0;
  int64_t value = 0;
  int64_t extra = 0;
};

struct Schedule {
  uint64_t seed = 0;  // also seeds every random draw of the run (loss, delays, tokens)
  std::vector<Fault> faults;
};

// The schedule `seed` stands for (the faults drawn from it).
Schedule GenerateSchedule(uint64_t seed, const SimOptions& options);
std::string DescribeSchedule(const Schedule& schedule);

struct Outcome {
  bool ok = true;
  std::string invariant;  // "I1".."I5", or "" when ok
  std::string detail;
  int64_t at_ms = 0;
  uint64_t steps = 0;
  bool refused = false;   // the controller refused its configuration; nothing ran
  // What the run exercised (summed over a soak to show the schedules reach the hard paths).
  struct Coverage {
    uint64_t promotions = 0;
    uint64_t went_unprotected = 0;
    uint64_t fences = 0;
    uint64_t pairings = 0;
    uint64_t unknown_outcomes = 0;  // arbiter answers that timed out
    uint64_t clean_stops = 0;
    Coverage& operator+=(const Coverage& o) {
      promotions += o.promotions;
      went_unprotected += o.went_unprotected;
      fences += o.fences;
      pairings += o.pairings;
      unknown_outcomes += o.unknown_outcomes;
      clean_stops += o.clean_stops;
      return *this;
    }
  } coverage;
  std::string trace;      // when options.trace
};

Outcome RunSchedule(const Schedule& schedule, const SimOptions& options);
std::string DescribeCoverage(const Outcome::Coverage& coverage);

// Removes faults from a failing schedule while it keeps failing (with the same invariant).
Schedule Shrink(const Schedule& schedule, const SimOptions& options);

inline constexpr int64_t kStepMs = 10;
inline constexpr int64_t kGrowthWindowMs = 1500;

}  // namespace understudy::failover::sim

#endif  // UNDERSTUDY_FAILOVER_SIM_SIMULATOR_H_
