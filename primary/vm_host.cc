#include "primary/vm_host.h"

#include <array>

#include "common/fd_io.h"
#include "common/log.h"
#include "common/private_directory.h"
#include "primary/checkpoint_shipper.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {

using nlohmann::json;

namespace {

Status NoMonitor(const std::string& vm) {
  return Status::FailedPrecondition("VM '" + vm + "': this host has no QEMU monitor to command");
}

}  // namespace

VmHost::VmHost(const PrimaryConfig& config) : vm_(config.vm) {}

Result<std::unique_ptr<VmHost>> VmHost::Launch(const PrimaryConfig& config) {
  std::unique_ptr<VmHost> host(new VmHost(config));
  UNDERSTUDY_RETURN_IF_ERROR(EnsurePrivateDirectory(config.runtime_dir));
  UNDERSTUDY_ASSIGN_OR_RETURN(host->metrics_server_, monitoring::MetricsServer::Start(config.metrics_listen));
  host->metrics_registry_ = &host->metrics_server_->registry();
  Log("primary", "metrics on http://" + host->metrics_server_->address() + "/metrics");
  UNDERSTUDY_ASSIGN_OR_RETURN(host->console_server_,
                              console::ConsoleServer::Start(config.console_socket(), *host->released_console_));
  if (config.attach) {
    UNDERSTUDY_RETURN_IF_ERROR(host->AttachQemu(*config.attach));
  } else {
    UNDERSTUDY_RETURN_IF_ERROR(host->LaunchQemu(config));
  }
  return host;
}

Result<std::unique_ptr<VmHost>> VmHost::FromPromotedStandby(PromotedStandby standby) {
  PrimaryConfig config;
  config.vm = standby.definition;
  std::unique_ptr<VmHost> host(new VmHost(config));
  host->owns_logs_ = false;
  host->borrowed_qmp_ = standby.qmp;
  host->qemu_pid_ = standby.qemu_pid;
  host->released_console_ = standby.released_console;
  host->metrics_registry_ = standby.metrics;
  host->disk_ = standby.disk;
  // Output continues the streams the secondary released so far.
  host->console_output_.StartAt(host->released_console_->end());
  if (standby.relay) {
    host->relay_ = standby.relay;
    host->released_network_ = standby.released_network;
    host->network_output_.StartAt(host->released_network_->end());
    host->relay_->ReleaseFrom(*host->released_network_, host->released_network_->end());
    host->relay_->SetMode(network::FrameRelay::Mode::kHold, [raw = host.get()](std::string_view framed) {
      raw->network_output_.Append(framed);
      raw->NoteOutputHeld();
    });
  }
  if (host->disk_) {
    host->disk_->StartRecording();
    host->disk_->SetWriteObserver([raw = host.get()] { raw->NoteOutputHeld(); });
  }
  host->StartSerialReader(std::move(standby.serial));
  return host;
}

VmHost::~VmHost() {
  stopping_.store(true);
  if (serial_thread_.joinable()) serial_thread_.join();
  if (disk_) disk_->SetWriteObserver(nullptr);
  // A borrowed relay outlives this host: it must not hand frames to it any more.
  if (relay_ && !own_relay_) relay_->SetMode(network::FrameRelay::Mode::kSilent);
  if (owns_logs_) released_console_->Close();
}

Status VmHost::LaunchQemu(const PrimaryConfig& config) {
  vm_.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  vm_.serial.path = config.runtime_dir + "/serial.sock";
  if (!config.disk_image.empty()) UNDERSTUDY_RETURN_IF_ERROR(StartDisk(config));
  if (config.network) {
    vm_.nic.kind = qemu::NicBackend::Kind::kStreamUnixServer;
    vm_.nic.path = config.runtime_dir + "/net.sock";
    if (!config.network->mac.empty()) vm_.nic.mac = config.network->mac;
  }
  qemu::LaunchOptions launch;
  launch.qemu_binary = config.qemu_binary;
  launch.runtime_dir = config.runtime_dir;
  launch.start_paused = true;  // attach the console before the first byte
  launch.extra_args = config.qemu_extra_args;
  UNDERSTUDY_ASSIGN_OR_RETURN(qemu_, qemu::QemuProcess::Launch(vm_, launch));
  qemu_pid_ = qemu_->pid();
  Log("primary", "QEMU started (pid " + std::to_string(qemu_pid_) + ") for VM '" + vm_.name + "'");
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd serial, ConnectUnixSocket(vm_.serial.path, Deadline::AfterMillis(5000)));
  StartSerialReader(std::move(serial));
  if (config.network) UNDERSTUDY_RETURN_IF_ERROR(ConnectNetwork(config));
  Result<json> resumed = Qmp("cont", json::object(), Deadline::AfterMillis(5000));
  if (!resumed.ok()) return resumed.status().WithContext("starting the guest");
  return WaitForBoot(config.boot_timeout_ms);
}

Status VmHost::AttachQemu(const AttachConfig& attach) {
  // QEMU already runs (started by someone else with a QMP and a serial socket); it must be
  // the machine config.vm describes, since the standby is built from that definition.
  Result<std::unique_ptr<qemu::QmpClient>> client = qemu::QmpClient::Connect(attach.qmp_socket, Deadline::AfterMillis(5000));
  if (!client.ok()) return client.status().WithContext("attaching to QEMU");
  attached_qmp_ = std::move(*client);
  Result<json> status = Qmp("query-status", json::object(), Deadline::AfterMillis(5000));
  if (!status.ok()) return status.status().WithContext("attaching to QEMU");
  Log("primary", "attached to a running QEMU " + attached_qmp_->qemu_version() + " (" + status->value("status", "?") +
                     ") for VM '" + vm_.name + "'");
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd serial, ConnectUnixSocket(attach.serial_socket, Deadline::AfterMillis(5000)));
  StartSerialReader(std::move(serial));
  if (status->value("running", false)) return Status::Ok();  // already up: protect it now
  Result<json> resumed = Qmp("cont", json::object(), Deadline::AfterMillis(5000));
  if (!resumed.ok()) return resumed.status().WithContext("starting the attached guest");
  return WaitForBoot(60000);
}

Status VmHost::StartDisk(const PrimaryConfig& config) {
  disk::DiskServerOptions options;
  if (config.test_ship_disk_writes_early) {
    options.test_on_write = [this](const disk::DiskWrite& write) {
      if (CheckpointShipper* shipper = early_disk_write_target_.load()) {
        (void)shipper->SendControl(replication::EncodeTestDiskWrite(write));
      }
    };
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(own_disk_, disk::DiskServer::Start(config.disk_image, config.runtime_dir + "/disk.sock",
                                                                 std::move(options)));
  disk_ = own_disk_.get();
  disk_->SetWriteObserver([this] { NoteOutputHeld(); });
  vm_.disk.size_bytes = disk_->size_bytes();
  vm_.disk.nbd_socket = disk_->socket_path();
  Log("primary", "serving the disk " + config.disk_image + " (" + std::to_string(vm_.disk.size_bytes) + " bytes) over NBD");
  return Status::Ok();
}

Status VmHost::ConnectNetwork(const PrimaryConfig& config) {
  network::FrameRelay::Mode mode = network::FrameRelay::Mode::kHold;
  if (config.test_network_output_commit_off) {
    Log("primary", "TEST: network output commit is off; frames go out before their epoch is committed");
    mode = network::FrameRelay::Mode::kDirect;
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(own_relay_, network::FrameRelay::Connect(vm_.nic.path, config.network->tap,
                                                                       config.network->netns, mode,
                                                                       [this](std::string_view framed) {
                                                                         network_output_.Append(framed);
                                                                         NoteOutputHeld();
                                                                       }));
  relay_ = own_relay_.get();
  relay_->ReleaseFrom(*released_network_, 0);
  Log("primary", "the guest's NIC (" + vm_.nic.model + ", " + vm_.nic.mac + ") is on tap " + config.network->tap +
                     "; its frames are released only once their epoch is committed");
  return Status::Ok();
}

Status VmHost::WaitForBoot(uint32_t timeout_ms) {
  // Protect the VM once it is up: the first checkpoint of a booting guest is needlessly big.
  Deadline boot = Deadline::AfterMillis(timeout_ms);
  while (console_output_.produced_offset() == 0) {
    if (stopping_.load()) return Status::Ok();
    if (boot.Expired()) return Status::DeadlineExceeded("the guest printed nothing within the boot timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();
}

qemu::QmpClient* VmHost::qmp() {
  if (borrowed_qmp_) return borrowed_qmp_;
  return qemu_ ? &qemu_->qmp() : attached_qmp_.get();
}

Result<json> VmHost::Qmp(const std::string& command, const json& arguments, Deadline deadline) {
  MutexLock lock(&qmp_mutex_);
  if (qmp() == nullptr) return NoMonitor(vm_.name);
  return qmp()->Execute(command, arguments, deadline);
}

Status VmHost::WithQmp(const std::function<Status(qemu::QmpClient&)>& use) {
  MutexLock lock(&qmp_mutex_);
  if (qmp() == nullptr) return NoMonitor(vm_.name);
  return use(*qmp());
}

void VmHost::StartSerialReader(UniqueFd serial) {
  {
    MutexLock lock(&serial_mutex_);
    serial_ = std::move(serial);
  }
  serial_thread_ = std::thread([this] { SerialLoop(); });
}

size_t VmHost::DrainSerial() {
  MutexLock lock(&serial_mutex_);
  std::array<std::byte, 4096> buffer;
  size_t total = 0;
  for (;;) {
    Result<size_t> count = ReadSome(serial_.get(), buffer, Deadline::Now());
    if (!count.ok()) return total;
    console_output_.Append({reinterpret_cast<const char*>(buffer.data()), *count});
    total += *count;
  }
}

void VmHost::SerialLoop() {
  int fd;
  {
    MutexLock lock(&serial_mutex_);
    fd = serial_.get();
  }
  while (!stopping_.load()) {
    if (WaitForFd(fd, /*for_write=*/false, Deadline::AfterMillis(100)).ok() && DrainSerial() > 0) NoteOutputHeld();
  }
}

void VmHost::SetOutputObserver(std::function<void()> observer) {
  MutexLock lock(&observer_mutex_);
  observer_ = std::move(observer);
}

void VmHost::NoteOutputHeld() {
  MutexLock lock(&observer_mutex_);
  if (observer_) observer_();
}

Status VmHost::Release(uint64_t epoch) {
  if (relay_) UNDERSTUDY_RETURN_IF_ERROR(network_output_.Release(epoch, *released_network_));
  return console_output_.Release(epoch, *released_console_);
}

void VmHost::Fence(const std::string& why) {
  // Console clients must move on to the new owner: this log will never grow again.
  released_console_->Close();
  Result<json> stopped = Qmp("stop", json::object(), Deadline::AfterMillis(2000));
  Log("primary", "fenced: " + why + "; guest stopped (" + (stopped.ok() ? std::string("ok") : stopped.status().ToString()) +
                     "), nothing unacknowledged will ever be released");
}

void VmHost::StopGuest() {
  Result<json> stopped = Qmp("stop", json::object(), Deadline::AfterMillis(2000));
  if (!stopped.ok()) Log("primary", "stopping the guest: " + stopped.status().ToString());
}

}  // namespace understudy::primary
