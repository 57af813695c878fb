// TestGuest: one of our freestanding test guests running in QEMU, with its console attached,
// torn down (QEMU killed and reaped, files removed) when the TestGuest is destroyed, whether
// the test passed or not.
//
// Also the small helpers every QEMU-driven test needs: is KVM usable here, where are the
// built guests, and a short-pathed scratch directory (UNIX socket paths must stay short,
// which Bazel's TEST_TMPDIR is not).
#ifndef UNDERSTUDY_TESTS_HARNESS_TEST_GUEST_H_
#define UNDERSTUDY_TESTS_HARNESS_TEST_GUEST_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "qemu/qemu_process.h"
#include "qemu/vm_definition.h"
#include "tests/harness/serial_console.h"

namespace understudy::testing {

// Empty when /dev/kvm can be opened read-write; otherwise why not, for a skip message.
std::optional<std::string> KvmUnavailableReason();

// Absolute path of a file in this test's runfiles, e.g. "tests/guests/counter.elf".
std::string RunfilePath(std::string_view workspace_relative);

// A fresh directory under /tmp, removed with everything in it on destruction.
class ScratchDir {
 public:
  static Result<ScratchDir> Create(std::string_view prefix);
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

struct CounterGuestOptions {
  uint32_t pages = 64;    // pages dirtied per pass
  uint32_t every = 1000;  // passes per console line
  uint32_t memory_mib = 64;
};

// The counter guest's definition with COM1 on a UNIX socket server at `serial_socket_path`.
qemu::VmDefinition CounterGuestDefinition(const CounterGuestOptions& options, const std::string& serial_socket_path);

// The disk guest (tests/guests/disk_writer.c): records on its IDE disk, one console line per
// record. The caller sets the disk (definition.disk, or -drive in TestGuest::Start's host_args).
qemu::VmDefinition DiskGuestDefinition(uint32_t delay);

enum class StartMode {
  kRun,             // boot the guest
  kIncomingDefer,   // wait in `-incoming defer` for a migration stream (a standby)
};

class TestGuest {
 public:
  // Starts QEMU paused, attaches the console, then lets the guest run (kRun), so the console
  // sees every byte from the first. kIncomingDefer leaves it waiting for migrate-incoming.
  // `host_args` are appended to this QEMU's command line (a -drive, a tap NIC, tracing): they
  // are this test's host-local additions, never part of the definition.
  static Result<std::unique_ptr<TestGuest>> Start(const qemu::VmDefinition& definition, std::string_view name,
                                                  StartMode mode = StartMode::kRun,
                                                  const std::vector<std::string>& host_args = {});
  static Result<std::unique_ptr<TestGuest>> StartCounter(const CounterGuestOptions& options, std::string_view name);

  qemu::QemuProcess& process() { return *process_; }
  SerialConsole& console() { return *console_; }
  const std::string& runtime_dir() const { return dir_.path(); }

 private:
  explicit TestGuest(ScratchDir dir) : dir_(std::move(dir)) {}

  ScratchDir dir_;  // destroyed last: QEMU's sockets live in it
  std::unique_ptr<qemu::QemuProcess> process_;
  std::optional<SerialConsole> console_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_TEST_GUEST_H_
