// ChildProcess: a program we started, bound to our life and always reaped.
//
// Spawn() forks and execs `argv` with stdout and stderr appended to `log_path` and stdin from
// /dev/null. The child gets PR_SET_PDEATHSIG(SIGKILL): if its parent dies — even by SIGKILL —
// the child dies too, so nothing we start can outlive us. (The signal is tied to the *thread*
// that spawned: spawn from a thread that lives as long as the child should.) Destroying a
// ChildProcess kills and reaps it.
//
// Thread safety: not thread-safe.
#ifndef UNDERSTUDY_COMMON_CHILD_PROCESS_H_
#define UNDERSTUDY_COMMON_CHILD_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"

namespace understudy {

class ChildProcess {
 public:
  // kNotFound when argv[0] (a name on PATH, or a path) is not an executable; kIOError when
  // fork or exec fail.
  static Result<ChildProcess> Spawn(const std::vector<std::string>& argv, const std::string& log_path);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it if it has).
  bool Running();
  // The wait status once the child exited.
  std::optional<int> wait_status() const { return wait_status_; }
  Result<int> WaitForExit(Deadline deadline);
  // Sends `signal` if the child still runs.
  void Signal(int signal);
  // SIGKILL and reap. Safe to call more than once.
  void Kill();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> wait_status_;
};

// Finds `binary` the way execvp would: a path, or a name looked up on PATH.
Result<std::string> FindExecutable(const std::string& binary);

// Runs a short command to completion (an `ip` or `tc` invocation). OK on exit status 0;
// otherwise an error quoting the command and what it printed. Killed at the deadline.
Status RunCommand(const std::vector<std::string>& argv, Deadline deadline);

// "exited with status 1" / "killed by signal 9", for messages.
std::string DescribeWaitStatus(int wait_status);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_CHILD_PROCESS_H_
