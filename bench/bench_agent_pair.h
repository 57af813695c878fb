// BenchAgentPair: ft-secondary + ft-primary protecting the counter guest, as
// tests/harness/agent_pair.h starts them with transport "tcp" and arbiter "none", plus one thing that harness cannot do yet: extra
// QEMU arguments in the VM definition — here a second QMP monitor on the primary's QEMU, so a
// benchmark can watch QEMU's own STOP/RESUME events without taking the agent's QMP socket.
//
// A local prototype of the change proposed for testing::AgentPair (an `extra_qemu_args`
// option); once that exists, pause_bench should use it and this file should go.
//
// Caveat, inherent to putting host-local arguments in the shipped VM definition: the secondary
// starts its standby from the same definition, so the standby QEMU also opens a monitor at
// `monitor_path` (QEMU unlinks and re-binds the path). Start() therefore connects to the
// monitor as soon as the primary's QEMU creates it — long before the first checkpoint commits
// and the standby starts — and checks that the QEMU it reached is not a waiting standby.
//
// Everything started here dies with the BenchAgentPair (SIGKILL to both agents; their QEMUs
// carry PR_SET_PDEATHSIG). Thread safety: not thread-safe.
#ifndef UNDERSTUDY_BENCH_BENCH_AGENT_PAIR_H_
#define UNDERSTUDY_BENCH_BENCH_AGENT_PAIR_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/result.h"
#include "qemu/qmp_client.h"
#include "tests/harness/test_guest.h"

namespace understudy::bench {

struct BenchAgentPairOptions {
  testing::CounterGuestOptions guest;
  uint32_t checkpoint_interval_ms = 50;
  uint32_t max_in_flight = 4;
  // Appended to the VM definition's extra_args after the monitor's `-qmp` (e.g. tracing).
  std::vector<std::string> extra_qemu_args;
};

class BenchAgentPair {
 public:
  // Starts the secondary, then the primary whose QEMU gets a second QMP monitor; connects
  // `monitor()` to it, then returns once the primary reports "protected".
  static Result<std::unique_ptr<BenchAgentPair>> Start(const BenchAgentPairOptions& options, std::string_view name);

  // The benchmark's own QMP connection to the primary's QEMU (events are delivered to every
  // monitor, so it sees the same STOP/RESUME the agent's monitor does).
  qemu::QmpClient& monitor() { return *monitor_; }

  Result<nlohmann::json> PrimaryStatus() const;
  std::string PrimaryLog() const;
  // What the primary's QEMU wrote to stdout and stderr (its runtime_dir/qemu.log).
  std::string PrimaryQemuLog() const;
  std::string SecondaryLog() const;

 private:
  BenchAgentPair(testing::ScratchDir dir, ChildProcess secondary)
      : dir_(std::move(dir)), secondary_(std::move(secondary)) {}

  testing::ScratchDir dir_;
  ChildProcess secondary_;
  std::optional<ChildProcess> primary_;
  std::unique_ptr<qemu::QmpClient> monitor_;
};

}  // namespace understudy::bench

#endif  // UNDERSTUDY_BENCH_BENCH_AGENT_PAIR_H_
