// PausePhases: where the VM's pause goes, over the most recent checkpoints — for `ftctl status`
// ("pause_phases_ms") and the benchmarks.
//
// From each checkpoint's CheckpointTiming (primary/colo_peer.h):
//   stop          checkpoint-reply → vmstate-send: QEMU stops the vCPUs, drains and flushes
//                 the block devices (vm_stop), runs the replication hooks
//   ram           vmstate-send → the RAM section's end: QEMU saves device state into a buffer,
//                 syncs the dirty bitmap and writes the pages; the agent reads and captures
//   device_state  RAM end → vmstate-loaded: QEMU sends the buffered device state; the agent
//                 stages the checkpoint and answers
//   agent_busy    of the whole pause, the time the agent's COLO thread was busy (parsing,
//                 copying pages into the capture, handing over); waiting_for_qemu the rest
// Reported as p50 and p99 in milliseconds.
//
// Thread safety: none; the owner serialises calls.
#ifndef UNDERSTUDY_PRIMARY_PAUSE_PHASES_H_
#define UNDERSTUDY_PRIMARY_PAUSE_PHASES_H_

#include <array>
#include <deque>
#include <nlohmann/json.hpp>

#include "primary/colo_peer.h"

namespace understudy::primary {

class PausePhases {
 public:
  explicit PausePhases(size_t kept = 1000) : kept_(kept) {}

  void Add(const CheckpointTiming& timing);
  // {"stop": {"p50": ms, "p99": ms}, "ram": ..., "device_state": ..., "agent_busy": ...,
  //  "waiting_for_qemu": ..., "checkpoints": N}
  nlohmann::json ToJson() const;

 private:
  static constexpr size_t kPhases = 5;
  const size_t kept_;
  std::deque<std::array<double, kPhases>> samples_;  // ms per phase, newest last
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PAUSE_PHASES_H_
