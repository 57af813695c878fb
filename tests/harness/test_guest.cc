#include "tests/harness/test_guest.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace understudy::testing {

namespace {

// The accelerator the definitions are for; "kvm" when none is usable (starting one then fails
// with ChosenAccelerator's reason).
std::string AcceleratorName() {
  Result<GuestAccelerator> chosen = ChosenAccelerator();
  return chosen.ok() ? chosen->name : "kvm";
}

}  // namespace

Result<ScratchDir> ScratchDir::Create(std::string_view prefix) {
  std::string pattern = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return Status::FromErrno("mkdtemp " + pattern, errno);
  return ScratchDir(pattern);
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

qemu::VmDefinition CounterGuestDefinition(const CounterGuestOptions& options, const std::string& serial_socket_path) {
  qemu::VmDefinition definition;
  definition.name = "counter";
  definition.memory_mib = options.memory_mib;
  definition.accelerator = AcceleratorName();
  definition.kernel = RunfilePath("tests/guests/counter.elf");
  definition.append = "pages=" + std::to_string(options.pages) + " every=" + std::to_string(EffectiveEvery(options));
  definition.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  definition.serial.path = serial_socket_path;
  return definition;
}

uint32_t EffectiveEvery(const CounterGuestOptions& options) {
  if (options.every != 0) return options.every;
  return CounterEveryFor(AcceleratorName(), options.pages, options.lines_per_second);
}

qemu::VmDefinition DiskGuestDefinition(std::optional<uint32_t> delay) {
  qemu::VmDefinition definition;
  definition.name = "disk";
  definition.memory_mib = 32;
  definition.accelerator = AcceleratorName();
  definition.kernel = RunfilePath("tests/guests/disk_writer.elf");
  const uint32_t spin = delay ? *delay : DiskGuestDelayFor(definition.accelerator, kDefaultDiskRecordsPerSecond);
  definition.append = "delay=" + std::to_string(spin);
  definition.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  return definition;
}

Result<std::unique_ptr<TestGuest>> TestGuest::Start(const qemu::VmDefinition& definition, std::string_view name,
                                                  StartMode mode, const std::vector<std::string>& host_args,
                                                  const std::optional<GuestAccelerator>& accelerator_override) {
  UNDERSTUDY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("ut-" + std::string(name)));
  GuestAccelerator accelerator;
  if (accelerator_override) {
    accelerator = *accelerator_override;
  } else {
    UNDERSTUDY_ASSIGN_OR_RETURN(accelerator, ChosenAccelerator());
  }
  std::unique_ptr<TestGuest> guest(new TestGuest(std::move(dir)));
  qemu::VmDefinition local = definition;
  local.accelerator = accelerator.name;
  if (local.serial.kind == qemu::SerialBackend::Kind::kUnixSocketServer) local.serial.path = guest->dir_.path() + "/serial.sock";

  qemu::LaunchOptions options;
  options.runtime_dir = guest->dir_.path();
  options.qemu_binary = accelerator.qemu_binary;
  options.start_paused = mode == StartMode::kRun;
  if (mode == StartMode::kIncomingDefer) options.extra_args = {"-incoming", "defer"};
  options.extra_args.insert(options.extra_args.end(), host_args.begin(), host_args.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(guest->process_, qemu::QemuProcess::Launch(local, options));
  if (local.serial.kind == qemu::SerialBackend::Kind::kUnixSocketServer) {
    UNDERSTUDY_ASSIGN_OR_RETURN(guest->console_, SerialConsole::Connect(local.serial.path, Deadline::AfterMillis(5000)));
  }
  if (mode == StartMode::kIncomingDefer) return guest;
  Result<nlohmann::json> resumed = guest->process_->qmp().Execute("cont", Deadline::AfterMillis(5000));
  if (!resumed.ok()) return resumed.status().WithContext("starting the guest's CPUs");
  return guest;
}

Result<std::unique_ptr<TestGuest>> TestGuest::StartCounter(const CounterGuestOptions& options, std::string_view name) {
  return Start(CounterGuestDefinition(options, /*serial_socket_path=*/"set by Start"), name);
}

}  // namespace understudy::testing
