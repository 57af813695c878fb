// SecondaryAgent: ft-secondary's core. Receives checkpoints from the primary, validates each
// completely, commits it all-or-nothing to its RAM image, forwards it to the ready standby,
// and only then acknowledges it — the ack is what lets the primary release that epoch's
// output. A damaged checkpoint is rejected with a log line and a NACK; the image and the
// standby stay at the previous epoch.
//
// When the primary's connection breaks without a goodbye (or on an explicit promote
// command), it promotes: the standby receives the committed device state and runs the guest
// from the last committed checkpoint; the agent then serves the VM's console from exactly
// where committed output ended.
//
// State machine:
//   kWaitingForPrimary → kSyncing (connected, no checkpoint committed yet)
//   → kStandbyReady (committing checkpoints) → kPromoting → kPromoted (the VM runs here)
//   kStandbyReady → kWaitingForPrimary on a clean goodbye (no promotion)
//   any → kFailed
//
// Thread safety: Run() on one thread; RequestStop(), RequestPromotion() and StatusJson()
// from any.
#ifndef UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_
#define UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "checkpoint/ram_image.h"
#include "common/unique_fd.h"
#include "console/released_log.h"
#include "qemu/vm_definition.h"
#include "secondary/secondary_config.h"
#include "secondary/standby.h"
#include "transport/channel.h"

namespace understudy::secondary {

class SecondaryAgent {
 public:
  enum class State { kWaitingForPrimary, kSyncing, kStandbyReady, kPromoting, kPromoted, kStopped, kFailed };

  explicit SecondaryAgent(SecondaryConfig config);
  ~SecondaryAgent();

  Status Run();
  void RequestStop() { stop_requested_.store(true); }
  void RequestPromotion() { promotion_requested_.store(true); }

  nlohmann::json StatusJson() const;

 private:
  // Serves one primary until it leaves. Returns OK after a goodbye or a promotion.
  Status ServePrimary(transport::Channel& channel);
  Status Receive(transport::Channel& channel, std::span<const std::byte> message);
  Status CommitFirst(const checkpoint::Checkpoint& checkpoint);
  Status Commit(const checkpoint::Checkpoint& checkpoint);
  Status AppendOutputs(const checkpoint::Checkpoint& checkpoint);
  Status Promote(std::string_view why);
  void SerialLoop();
  void SetState(State state);

  const SecondaryConfig config_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> promotion_requested_{false};

  // Owned by the Run() thread:
  std::optional<qemu::VmDefinition> definition_;
  std::optional<checkpoint::QemuStreamInfo> stream_info_;
  std::unique_ptr<checkpoint::RamImage> image_;
  std::string device_state_;  // of the committed epoch
  std::unique_ptr<Standby> standby_;
  bool standby_broken_ = false;
  UniqueFd standby_serial_;
  std::thread serial_thread_;
  console::ReleasedLog console_;  // committed output, then (after promotion) the VM's own

  mutable std::mutex status_mutex_;
  // Protected by status_mutex_:
  State state_ = State::kWaitingForPrimary;
  uint64_t committed_epoch_ = 0;
  uint64_t rejected_ = 0;
  uint64_t bytes_received_ = 0;
  std::string last_error_;
  std::string listen_address_;
  std::string primary_;
  double promotion_ms_ = 0;
};

std::string_view StateName(SecondaryAgent::State state);

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_SECONDARY_AGENT_H_
