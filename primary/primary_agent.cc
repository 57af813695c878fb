#include "primary/primary_agent.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "common/fd_io.h"
#include "common/log.h"
#include "console/console_server.h"
#include "control/control_server.h"
#include "primary/colo_setup.h"

namespace understudy::primary {

namespace qs = checkpoint::qemu_stream;
using nlohmann::json;

std::string_view StateName(PrimaryAgent::State state) {
  switch (state) {
    case PrimaryAgent::State::kStarting: return "starting";
    case PrimaryAgent::State::kSyncing: return "syncing";
    case PrimaryAgent::State::kProtected: return "protected";
    case PrimaryAgent::State::kSecondaryLost: return "secondary-lost";
    case PrimaryAgent::State::kStopped: return "stopped";
    case PrimaryAgent::State::kFailed: return "failed";
  }
  return "unknown";
}

// Captures each epoch from QEMU's stream. Runs on the COLO peer's thread, inside the VM's
// pause for checkpoints: copies only.
class PrimaryAgent::StreamConsumer : public checkpoint::QemuStreamVisitor {
 public:
  explicit StreamConsumer(PrimaryAgent& agent) : agent_(agent) { current_.epoch = 1; }

  Status OnConfiguration(const checkpoint::StreamConfiguration& configuration) override {
    stream_info_.machine_type = configuration.machine_type;
    stream_info_.capabilities = configuration.capabilities;
    return Status::Ok();
  }
  Status OnRamBlocks(const checkpoint::RamBlockList& blocks) override {
    current_.ram_blocks = blocks;
    current_.page_bytes.reserve(64u << 20);
    return Status::Ok();
  }
  Status OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) override {
    current_.AddPage(block, offset, page);
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) override {
    if (fill != 0) return Status::NotSupported("a RAM page filled with byte " + std::to_string(fill));
    current_.AddZeroPage(block, offset);
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> state) override {
    current_.device_state.assign(reinterpret_cast<const char*>(state.data()), state.size());
    if (precopy_done_) Submit();
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view, const std::vector<checkpoint::DeviceSectionSpan>&) override {
    // The precopy is complete and QEMU keeps the VM stopped until checkpoint-ready.
    stream_info_.ram_section_id = agent_.peer_->reader().ram_section_id().value_or(0);
    current_.stream_info = stream_info_;
    SealConsole();
    precopy_done_ = true;
    Submit();
    return Status::Ok();
  }
  Status OnColoMessage(qs::ColoMessage message) override {
    // vmstate-send comes after QEMU stopped the VM: every byte the guest printed in this
    // epoch has reached the serial socket.
    if (message == qs::ColoMessage::kVmstateSend) SealConsole();
    return Status::Ok();
  }

 private:
  void SealConsole() {
    agent_.DrainSerial();
    current_.console_output = agent_.console_output_.Seal(current_.epoch);
  }
  void Submit() {
    uint64_t next = current_.epoch + 1;
    agent_.shipper_->Submit(std::move(current_));
    current_ = EpochCapture{};
    current_.epoch = next;
  }

  PrimaryAgent& agent_;
  EpochCapture current_;
  checkpoint::QemuStreamInfo stream_info_;
  bool precopy_done_ = false;
};

PrimaryAgent::PrimaryAgent(PrimaryConfig config) : config_(std::move(config)) {}

PrimaryAgent::~PrimaryAgent() {
  RequestStop();
  if (serial_thread_.joinable()) serial_thread_.join();
}

void PrimaryAgent::RequestStop() {
  stop_requested_.store(true);
  if (peer_) peer_->RequestStop();
}

void PrimaryAgent::SetState(State state) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (state_ == state) return;
  Log("primary", "state " + std::string(StateName(state_)) + " -> " + std::string(StateName(state)));
  state_ = state;
  if (state == State::kProtected) protected_since_ = std::chrono::steady_clock::now();
}

void PrimaryAgent::RecordPause(const CheckpointTiming& timing) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  ++checkpoints_;
  pauses_ms_.push_back(std::chrono::duration<double, std::milli>(timing.pause()).count());
  if (pauses_ms_.size() > 2048) pauses_ms_.erase(pauses_ms_.begin(), pauses_ms_.begin() + 1024);
}

void PrimaryAgent::DrainSerial() {
  std::lock_guard<std::mutex> lock(serial_mutex_);
  std::array<std::byte, 4096> buffer;
  for (;;) {
    Result<size_t> count = ReadSome(serial_.get(), buffer, Deadline::Now());
    if (!count.ok()) return;
    console_output_.Append({reinterpret_cast<const char*>(buffer.data()), *count});
  }
}

void PrimaryAgent::SerialLoop() {
  while (!stop_requested_.load()) {
    if (WaitForFd(serial_.get(), /*for_write=*/false, Deadline::AfterMillis(100)).ok()) DrainSerial();
  }
}

Status PrimaryAgent::Start() {
  ::mkdir(config_.runtime_dir.c_str(), 0700);
  qemu::VmDefinition vm = config_.vm;
  vm.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  vm.serial.path = config_.runtime_dir + "/serial.sock";
  qemu::LaunchOptions launch;
  launch.qemu_binary = config_.qemu_binary;
  launch.runtime_dir = config_.runtime_dir;
  launch.start_paused = true;  // attach the console before the first byte
  UNDERSTUDY_ASSIGN_OR_RETURN(qemu_, qemu::QemuProcess::Launch(vm, launch));
  Log("primary", "QEMU started (pid " + std::to_string(qemu_->pid()) + ") for VM '" + vm.name + "'");
  UNDERSTUDY_ASSIGN_OR_RETURN(serial_, ConnectUnixSocket(vm.serial.path, Deadline::AfterMillis(5000)));
  serial_thread_ = std::thread([this] { SerialLoop(); });
  Result<json> resumed = qemu_->qmp().Execute("cont", Deadline::AfterMillis(5000));
  if (!resumed.ok()) return resumed.status().WithContext("starting the guest");

  // Protect the VM once it is up: the first checkpoint of a booting guest is needlessly big.
  Deadline boot = Deadline::AfterMillis(config_.boot_timeout_ms);
  while (console_output_.produced_offset() == 0) {
    if (stop_requested_.load()) return Status::Ok();
    if (boot.Expired()) return Status::DeadlineExceeded("the guest printed nothing within the boot timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();
}

Status PrimaryAgent::ProtectLoop() {
  Result<std::unique_ptr<transport::Channel>> channel =
      transport::Dial(config_.secondary_uri, config_.channel, Deadline::AfterMillis(30000));
  if (!channel.ok()) return channel.status().WithContext("connecting to the secondary");
  Log("primary", "connected to the secondary at " + config_.secondary_uri);

  ShipperOptions shipper_options;
  shipper_options.max_in_flight = config_.max_in_flight;
  shipper_options.machine_definition_json = config_.vm.ToJson().dump();
  shipper_options.test_corrupt_epoch = config_.test_corrupt_epoch;
  shipper_ = std::make_unique<CheckpointShipper>(std::move(*channel), console_output_, released_console_,
                                                 shipper_options);

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return Status::FromErrno("socketpair", errno);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  StreamConsumer consumer(*this);
  ColoPeerOptions peer_options;
  peer_options.before_reply = [this](Deadline deadline) {
    Status room = shipper_->WaitForRoom(deadline);
    if (room.code() == Status::Code::kBroken) SetState(State::kSecondaryLost);
    return room;
  };
  peer_options.on_precopy_complete = [this] { SetState(State::kProtected); };
  peer_options.on_checkpoint_acked = [this](const CheckpointTiming& timing) { RecordPause(timing); };
  peer_ = std::make_unique<ColoPeer>(std::move(ours), consumer, peer_options);
  if (stop_requested_.load()) peer_->RequestStop();

  SetState(State::kSyncing);
  UNDERSTUDY_RETURN_IF_ERROR(StartColoMigration(qemu_->qmp(), theirs.get(),
                                                std::chrono::milliseconds(config_.checkpoint_interval_ms),
                                                Deadline::AfterMillis(10000)));
  theirs.reset();
  Status served = peer_->Run();
  bool goodbye = stop_requested_.load();
  shipper_->Stop(goodbye);
  if (!served.ok() && shipper_->stats().secondary_lost) {
    SetState(State::kSecondaryLost);
    // Output stays held. Without an arbiter (failover issue) going unprotected is not safe.
    while (!stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return Status::Ok();
  }
  return served;
}

Status PrimaryAgent::Run() {
  std::unique_ptr<console::ConsoleServer> console_server;
  std::unique_ptr<control::ControlServer> control_server;
  Status status = [&]() -> Status {
    ::mkdir(config_.runtime_dir.c_str(), 0700);
    UNDERSTUDY_ASSIGN_OR_RETURN(console_server, console::ConsoleServer::Start(config_.console_socket(), released_console_));
    UNDERSTUDY_ASSIGN_OR_RETURN(
        control_server,
        control::ControlServer::Start(config_.control_socket(),
                                      {{"status", [this](const json&) -> Result<json> { return StatusJson(); }}}));
    UNDERSTUDY_RETURN_IF_ERROR(Start());
    if (stop_requested_.load()) return Status::Ok();
    return ProtectLoop();
  }();
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(status_mutex_);
    last_error_ = status.ToString();
  }
  SetState(status.ok() ? State::kStopped : State::kFailed);
  if (!status.ok()) Log("primary", "failed: " + status.ToString());
  stop_requested_.store(true);
  released_console_.Close();
  return status;
}

namespace {

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(fraction * (values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

}  // namespace

json PrimaryAgent::StatusJson() const {
  ShipperStats shipping = shipper_ ? shipper_->stats() : ShipperStats{};
  std::lock_guard<std::mutex> lock(status_mutex_);
  std::vector<double> recent(pauses_ms_.end() - std::min<size_t>(pauses_ms_.size(), 1000), pauses_ms_.end());
  double seconds = state_ == State::kProtected
                       ? std::chrono::duration<double>(std::chrono::steady_clock::now() - protected_since_).count()
                       : 0;
  return {
      {"role", "primary"},
      {"vm", config_.vm.name},
      {"state", StateName(state_)},
      {"qemu_pid", qemu_ ? qemu_->pid() : 0},
      {"epoch", shipping.captured_epoch},
      {"shipped_epoch", shipping.shipped_epoch},
      {"committed_epoch", shipping.acked_epoch},
      {"in_flight", shipping.captured_epoch - shipping.acked_epoch},
      {"checkpoints", checkpoints_},
      {"checkpoints_per_second", seconds > 0 ? checkpoints_ / seconds : 0.0},
      {"pause_ms_p50", Percentile(recent, 0.5)},
      {"pause_ms_p99", Percentile(recent, 0.99)},
      {"bytes_sent", shipping.bytes_sent},
      {"pages_sent", shipping.pages_sent},
      {"compression_ratio", shipping.bytes_sent ? double(shipping.raw_page_bytes) / shipping.bytes_sent : 0.0},
      {"nacks", shipping.nacks},
      {"console_held_bytes", console_output_.held_bytes()},
      {"console_released_bytes", released_console_.end()},
      {"last_error", last_error_.empty() ? shipping.last_error : last_error_},
  };
}

}  // namespace understudy::primary
