// VmHost: everything that lives as long as the protected VM on this host — its QEMU (launched,
// attached to, or a promoted standby handed over by the secondary agent), the QMP connection,
// the guest's serial console and the log of its released bytes, the disk server, the frame
// relay to the tap and the log of released frames, the console server and /metrics.
//
// The guest's output (console bytes, frames) always enters an OutputBuffer and leaves it only
// through Release(epoch): the owner of the VM (primary/vm_owner.h) calls it when the
// PairController says kReleaseUpTo. A ProtectionSession (one pairing with a secondary) seals
// the buffers epoch by epoch; sessions come and go, the host and its buffers stay.
//
// Thread safety: all public methods are thread-safe. The serial reader runs on a thread of
// the host's own.
#ifndef UNDERSTUDY_PRIMARY_VM_HOST_H_
#define UNDERSTUDY_PRIMARY_VM_HOST_H_

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"
#include "common/unique_fd.h"
#include "console/console_server.h"
#include "console/released_log.h"
#include "disk/disk_server.h"
#include "monitoring/metrics_server.h"
#include "network/frame_relay.h"
#include "primary/output_buffer.h"
#include "primary/primary_config.h"
#include "qemu/qemu_process.h"

namespace prometheus {
class Registry;
}

namespace understudy::primary {

class CheckpointShipper;

// A running standby the secondary agent promoted, handed over for re-protection. The
// secondary keeps owning the QEMU process, the logs, the disk server and the relay; they
// outlive the host built from them.
struct PromotedStandby {
  qemu::VmDefinition definition;
  qemu::QmpClient* qmp = nullptr;
  int qemu_pid = 0;
  UniqueFd serial;  // the guest's COM1; the secondary no longer reads it
  console::ReleasedLog* released_console = nullptr;
  prometheus::Registry* metrics = nullptr;
  disk::DiskServer* disk = nullptr;           // when the VM has a disk
  network::FrameRelay* relay = nullptr;       // when the VM has a NIC, with the log it sends
  console::ReleasedLog* released_network = nullptr;
};

class VmHost {
 public:
  // Launches QEMU as `config` describes (or attaches to it: config.attach), serves its disk,
  // relays its NIC, starts /metrics and the console server, and waits until the guest printed
  // its first byte. The guest's output is held from its first byte on.
  static Result<std::unique_ptr<VmHost>> Launch(const PrimaryConfig& config);
  // Adopts a promoted standby. Its output is held from now on, continuing the offsets of the
  // logs the secondary released so far.
  static Result<std::unique_ptr<VmHost>> FromPromotedStandby(PromotedStandby standby);
  ~VmHost();
  VmHost(const VmHost&) = delete;
  VmHost& operator=(const VmHost&) = delete;

  // Issues one QMP command (one at a time: QmpClient is not thread-safe).
  Result<nlohmann::json> Qmp(const std::string& command, const nlohmann::json& arguments, Deadline deadline)
      EXCLUDES(qmp_mutex_);
  // Runs `use` with the QMP client held (for a sequence of commands, e.g. starting COLO).
  Status WithQmp(const std::function<Status(qemu::QmpClient&)>& use) EXCLUDES(qmp_mutex_);

  // The machine as it runs here (host-local paths filled in, the disk's size).
  const qemu::VmDefinition& vm() const { return vm_; }
  int qemu_pid() const { return qemu_pid_; }
  disk::DiskServer* disk() const { return disk_; }
  network::FrameRelay* relay() const { return relay_; }
  OutputBuffer& console_output() { return console_output_; }
  OutputBuffer& network_output() { return network_output_; }
  console::ReleasedLog& released_console() { return *released_console_; }
  console::ReleasedLog& released_network() { return *released_network_; }
  prometheus::Registry& metrics_registry() { return *metrics_registry_; }
  std::string metrics_address() const { return metrics_server_ ? metrics_server_->address() : ""; }

  // Reads whatever the serial socket holds right now into the console buffer (a session
  // calls it when QEMU stopped the VM, so the epoch's bytes are all in). Returns the count.
  size_t DrainSerial() EXCLUDES(serial_mutex_);
  // Called whenever held output arrives (console, frames, disk writes): output-triggered
  // checkpoints. Null: nobody listens.
  void SetOutputObserver(std::function<void()> observer) EXCLUDES(observer_mutex_);
  // Releases every sealed epoch <= `epoch` of both streams into their logs.
  Status Release(uint64_t epoch);
  // This host lost the VM: stops the guest and closes the console log (followers move on).
  void Fence(const std::string& why);
  // A clean stop: stops the guest; nothing more is produced.
  void StopGuest();
  // TEST ONLY (test_ship_disk_writes_early): where every completed disk write is also sent.
  void TEST_SetEarlyDiskWriteTarget(CheckpointShipper* shipper) { early_disk_write_target_.store(shipper); }

 private:
  explicit VmHost(const PrimaryConfig& config);
  Status LaunchQemu(const PrimaryConfig& config);
  Status AttachQemu(const AttachConfig& attach);
  Status StartDisk(const PrimaryConfig& config);
  Status ConnectNetwork(const PrimaryConfig& config);
  Status WaitForBoot(uint32_t timeout_ms);
  void StartSerialReader(UniqueFd serial);
  void SerialLoop();
  void NoteOutputHeld() EXCLUDES(observer_mutex_);
  qemu::QmpClient* qmp() REQUIRES(qmp_mutex_);  // null: a host built without a monitor (tests)

  // Constant once built:
  qemu::VmDefinition vm_;
  int qemu_pid_ = 0;
  std::unique_ptr<qemu::QemuProcess> qemu_;           // launched here
  std::unique_ptr<qemu::QmpClient> attached_qmp_;     // attached to a running one
  qemu::QmpClient* borrowed_qmp_ = nullptr;           // a promoted standby's
  std::unique_ptr<disk::DiskServer> own_disk_;
  disk::DiskServer* disk_ = nullptr;
  std::unique_ptr<network::FrameRelay> own_relay_;
  network::FrameRelay* relay_ = nullptr;
  console::ReleasedLog own_released_console_;
  console::ReleasedLog own_released_network_{4u << 20};
  console::ReleasedLog* released_console_ = &own_released_console_;
  console::ReleasedLog* released_network_ = &own_released_network_;
  std::unique_ptr<monitoring::MetricsServer> metrics_server_;
  prometheus::Registry* metrics_registry_ = nullptr;
  std::unique_ptr<console::ConsoleServer> console_server_;
  bool owns_logs_ = true;

  OutputBuffer console_output_{checkpoint::OutputStream::kConsole};
  OutputBuffer network_output_{checkpoint::OutputStream::kNetwork};

  Mutex qmp_mutex_;
  Mutex serial_mutex_;  // one reader of serial_ at a time (serial thread vs. a session's drain)
  UniqueFd serial_ GUARDED_BY(serial_mutex_);
  Mutex observer_mutex_;
  std::function<void()> observer_ GUARDED_BY(observer_mutex_);
  std::atomic<CheckpointShipper*> early_disk_write_target_{nullptr};
  std::atomic<bool> stopping_{false};
  std::thread serial_thread_;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_VM_HOST_H_
