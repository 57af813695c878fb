// TestGuest: one of our freestanding test guests running in QEMU, with its console attached,
// torn down (QEMU killed and reaped, files removed) when the TestGuest is destroyed, whether
// the test passed or not.
//
// Every guest runs under the accelerator the harness chose (tests/harness/guest_accelerator.h:
// KVM with stock QEMU, or TCG with the TCG vehicle), and the guest definitions here derive
// their loop knobs from output rates for that accelerator (tests/harness/guest_pace.h).
//
// Also the small helpers every QEMU-driven test needs: where are the built guests, and a
// short-pathed scratch directory (UNIX socket paths must stay short, which Bazel's
// TEST_TMPDIR is not).
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
#include "tests/harness/guest_accelerator.h"
#include "tests/harness/guest_pace.h"
#include "tests/harness/runfiles.h"
#include "tests/harness/serial_console.h"

namespace understudy::testing {

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
  uint32_t pages = 64;  // pages dirtied per pass
  // Passes per console line, verbatim; 0: derived from lines_per_second for the accelerator
  // in use (the guests run ~200x faster under TCG than under this machine's KVM).
  uint32_t every = 0;
  double lines_per_second = kDefaultCounterLinesPerSecond;  // when every is 0
  uint32_t memory_mib = 64;
};

// The `every=` the counter guest gets under the chosen accelerator.
uint32_t EffectiveEvery(const CounterGuestOptions& options);

// The counter guest's definition with COM1 on a UNIX socket server at `serial_socket_path`,
// for the chosen accelerator.
qemu::VmDefinition CounterGuestDefinition(const CounterGuestOptions& options, const std::string& serial_socket_path);

// The disk guest (tests/guests/disk_writer.c): records on its IDE disk, one console line per
// record, `delay` spin iterations apart (verbatim), or by default at the rate its tests were
// written for (guest_pace.h) under the chosen accelerator. The caller sets the disk
// (definition.disk, or -drive in TestGuest::Start's host_args).
qemu::VmDefinition DiskGuestDefinition(std::optional<uint32_t> delay = std::nullopt);

enum class StartMode {
  kRun,             // boot the guest
  kIncomingDefer,   // wait in `-incoming defer` for a migration stream (a standby)
};

class TestGuest {
 public:
  // Starts QEMU paused, attaches the console, then lets the guest run (kRun), so the console
  // sees every byte from the first. kIncomingDefer leaves it waiting for migrate-incoming.
  // The guest runs under `accelerator` and its QEMU when given (the Linux guest always needs
  // TCG, tests/harness/linux_guest.h), else under the chosen one, whatever `definition` says.
  // `host_args` are appended to this QEMU's command line (a -drive, a tap NIC, tracing): they
  // are this test's host-local additions, never part of the definition.
  static Result<std::unique_ptr<TestGuest>> Start(const qemu::VmDefinition& definition, std::string_view name,
                                                  StartMode mode = StartMode::kRun,
                                                  const std::vector<std::string>& host_args = {},
                                                  const std::optional<GuestAccelerator>& accelerator = std::nullopt);
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
