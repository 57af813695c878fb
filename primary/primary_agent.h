// PrimaryAgent: ft-primary's core. Runs the protected VM's QEMU, plays QEMU's COLO secondary
// on the migration socket, captures each checkpoint while the VM is stopped, and hands it to
// the CheckpointShipper; holds the guest's console output until its epoch is acknowledged.
//
// State machine (explicit; `ftctl status` shows it):
//   kStarting       QEMU launched, waiting for the guest's first console output
//   kSyncing        COLO migration started, initial full image in progress
//   kProtected      checkpointing; output released as the secondary acknowledges
//   kSecondaryLost  the secondary stopped answering; output held (failover decides)
//   kStopped        shut down (cleanly: the secondary was told goodbye)
//   kFailed         an unrecoverable error; see last_error
//
// Thread safety: Run() on one thread; RequestStop() and StatusJson() from any.
#ifndef UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_
#define UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "console/released_log.h"
#include "primary/checkpoint_shipper.h"
#include "primary/colo_peer.h"
#include "primary/output_buffer.h"
#include "primary/primary_config.h"
#include "qemu/qemu_process.h"

namespace understudy::primary {

class PrimaryAgent {
 public:
  enum class State { kStarting, kSyncing, kProtected, kSecondaryLost, kStopped, kFailed };

  explicit PrimaryAgent(PrimaryConfig config);
  ~PrimaryAgent();

  // Runs until RequestStop() (then says goodbye to the secondary and returns OK) or a fatal
  // error (returned).
  Status Run();
  void RequestStop();

  nlohmann::json StatusJson() const;

 private:
  class StreamConsumer;

  Status Start();
  Status ProtectLoop();
  void SerialLoop();
  // Reads whatever the guest's serial socket holds right now into the console buffer.
  void DrainSerial();
  void SetState(State state);
  void RecordPause(const CheckpointTiming& timing);

  const PrimaryConfig config_;
  std::atomic<bool> stop_requested_{false};

  std::unique_ptr<qemu::QemuProcess> qemu_;
  UniqueFd serial_;
  std::mutex serial_mutex_;  // one reader of serial_ at a time (serial thread vs. drain)
  std::thread serial_thread_;
  OutputBuffer console_output_{checkpoint::OutputStream::kConsole};
  console::ReleasedLog released_console_;
  std::unique_ptr<CheckpointShipper> shipper_;
  std::unique_ptr<ColoPeer> peer_;

  mutable std::mutex status_mutex_;
  // Protected by status_mutex_:
  State state_ = State::kStarting;
  std::string last_error_;
  std::vector<double> pauses_ms_;  // most recent checkpoints, newest last
  uint64_t checkpoints_ = 0;
  std::chrono::steady_clock::time_point protected_since_;
};

std::string_view StateName(PrimaryAgent::State state);

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_PRIMARY_AGENT_H_
