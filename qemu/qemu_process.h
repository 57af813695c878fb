// QemuProcess: one QEMU child process, started from a VmDefinition and always reaped.
//
// Launch() starts QEMU with a QMP socket in `runtime_dir`, its stdout and stderr captured to
// `runtime_dir/qemu.log`, and returns once QMP has answered. The child is bound to its
// parent's life (PR_SET_PDEATHSIG): if the agent or test dies, its QEMU dies too, so no
// stray QEMU outlives whoever started it. Destroying a QemuProcess kills and reaps QEMU.
//
// Failures name their cause: a missing binary (kNotFound), QMP silent past the deadline
// (kDeadlineExceeded), QEMU exiting during start-up (kBroken, with QEMU's own stderr).
//
// Thread safety: not thread-safe. PR_SET_PDEATHSIG fires when the *thread* that launched
// QEMU exits, so launch from a thread that lives as long as the QEMU should.
#ifndef UNDERSTUDY_QEMU_QEMU_PROCESS_H_
#define UNDERSTUDY_QEMU_QEMU_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/deadline.h"
#include "common/result.h"
#include "qemu/qmp_client.h"
#include "qemu/vm_definition.h"

namespace understudy::qemu {

struct LaunchOptions {
  // A name to look up on PATH, or a path.
  std::string qemu_binary = "qemu-system-x86_64";
  // Existing directory for the QMP socket and the log. REQUIRES: short enough for a UNIX
  // socket path (about 90 bytes).
  std::string runtime_dir;
  // Start with the CPUs stopped (-S), e.g. to attach to the console before the first byte.
  bool start_paused = false;
  // Arguments appended after the definition's (e.g. {"-incoming", "defer"} for a standby).
  std::vector<std::string> extra_args;
  // How long QEMU may take to answer on QMP.
  std::chrono::milliseconds qmp_timeout{15000};
};

class QemuProcess {
 public:
  static Result<std::unique_ptr<QemuProcess>> Launch(const VmDefinition& definition, const LaunchOptions& options);

  ~QemuProcess();  // kills (SIGKILL) and reaps QEMU if it still runs
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  QmpClient& qmp() { return *qmp_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }
  const std::string& qmp_socket_path() const { return qmp_socket_path_; }

  // The QEMU command line, for logs.
  const std::vector<std::string>& command_line() const { return command_line_; }

  // Everything QEMU wrote to stdout and stderr so far.
  std::string Log() const;

  // True while the child has not exited (reaps it if it has).
  bool Running();

  // Waits for the child to exit on its own; returns its wait status.
  Result<int> WaitForExit(Deadline deadline);

  // SIGKILL and reap. Safe to call more than once.
  void Kill();

 private:
  QemuProcess() = default;

  std::optional<ChildProcess> child_;
  std::string log_path_;
  std::string qmp_socket_path_;
  std::vector<std::string> command_line_;
  std::unique_ptr<QmpClient> qmp_;
};

}  // namespace understudy::qemu

#endif  // UNDERSTUDY_QEMU_QEMU_PROCESS_H_
