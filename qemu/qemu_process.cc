#include "qemu/qemu_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fd_io.h"
#include "common/unique_fd.h"

namespace understudy::qemu {

namespace {

// Finds `binary` the way execvp would; kNotFound with a hint when it is nowhere.
Result<std::string> ResolveBinary(const std::string& binary) {
  if (binary.find('/') != std::string::npos) {
    if (::access(binary.c_str(), X_OK) == 0) return binary;
    return Status::NotFound("QEMU binary '" + binary + "' does not exist or is not executable");
  }
  const char* path = std::getenv("PATH");
  std::string directories = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream stream(directories);
  std::string directory;
  while (std::getline(stream, directory, ':')) {
    std::string candidate = (directory.empty() ? "." : directory) + "/" + binary;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return Status::NotFound("QEMU binary '" + binary + "' not found on PATH (" + directories +
                          "); install qemu-system-x86 or set qemu_binary");
}

std::string TailOf(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

}  // namespace

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "stopped (wait status " + std::to_string(wait_status) + ")";
}

Result<std::unique_ptr<QemuProcess>> QemuProcess::Launch(const VmDefinition& definition,
                                                          const LaunchOptions& options) {
  Deadline deadline = Deadline::After(options.qmp_timeout);
  if (options.runtime_dir.empty()) return Status::InvalidArgument("LaunchOptions.runtime_dir is required");
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string binary, ResolveBinary(options.qemu_binary));

  std::unique_ptr<QemuProcess> process(new QemuProcess());
  process->qmp_socket_path_ = options.runtime_dir + "/qmp.sock";
  process->log_path_ = options.runtime_dir + "/qemu.log";
  ::unlink(process->qmp_socket_path_.c_str());

  std::vector<std::string>& argv = process->command_line_;
  argv.push_back(binary);
  for (std::string& arg : definition.QemuArguments()) argv.push_back(std::move(arg));
  argv.insert(argv.end(), {"-qmp", "unix:" + process->qmp_socket_path_ + ",server=on,wait=off"});
  if (options.start_paused) argv.push_back("-S");
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());

  UniqueFd log(::open(process->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log.valid()) return Status::FromErrno("creating QEMU log " + process->log_path_, errno);
  // exec failures travel back through this close-on-exec pipe; a clean exec closes it.
  int exec_error_pipe[2];
  if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  UniqueFd exec_error_read(exec_error_pipe[0]);
  UniqueFd exec_error_write(exec_error_pipe[1]);

  std::vector<char*> raw_argv;
  for (std::string& arg : argv) raw_argv.push_back(arg.data());
  raw_argv.push_back(nullptr);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    ::execv(raw_argv[0], raw_argv.data());
    int error_number = errno;
    [[maybe_unused]] ssize_t ignored = ::write(exec_error_write.get(), &error_number, sizeof(error_number));
    ::_exit(127);
  }
  process->pid_ = pid;
  exec_error_write.reset();
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(exec_error_read.get(), &exec_errno, sizeof(exec_errno));
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof(exec_errno))) {
    process->Kill();
    return Status::FromErrno("executing QEMU binary " + binary, exec_errno);
  }

  // Wait for QMP, watching for an early exit: a QEMU that rejects its command line exits at
  // once, and its stderr is the only useful explanation.
  for (;;) {
    if (!process->Running()) {
      return Status::Broken("QEMU " + DescribeWaitStatus(*process->wait_status_) + " during start-up: " +
                            TailOf(process->Log(), 2000));
    }
    Deadline attempt = Deadline::AfterMillis(100).Min(deadline);
    Result<std::unique_ptr<QmpClient>> qmp = QmpClient::Connect(process->qmp_socket_path_, attempt);
    if (qmp.ok()) {
      process->qmp_ = std::move(*qmp);
      return process;
    }
    if (qmp.status().code() != Status::Code::kDeadlineExceeded) {
      return qmp.status().WithContext("connecting to QEMU's QMP");
    }
    if (deadline.Expired()) {
      std::string log_tail = TailOf(process->Log(), 2000);
      return Status::DeadlineExceeded("QMP did not answer within " + std::to_string(options.qmp_timeout.count()) +
                                      " ms on " + process->qmp_socket_path_ +
                                      (log_tail.empty() ? "" : "; QEMU said: " + log_tail));
    }
  }
}

QemuProcess::~QemuProcess() {
  qmp_.reset();
  Kill();
  if (!qmp_socket_path_.empty()) ::unlink(qmp_socket_path_.c_str());
}

std::string QemuProcess::Log() const {
  std::ifstream file(log_path_);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

bool QemuProcess::Running() {
  if (wait_status_ || pid_ <= 0) return false;
  int status = 0;
  pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
  if (reaped == pid_) {
    wait_status_ = status;
    return false;
  }
  return true;
}

Result<int> QemuProcess::WaitForExit(Deadline deadline) {
  while (Running()) {
    if (deadline.Expired()) return Status::DeadlineExceeded("QEMU (pid " + std::to_string(pid_) + ") still running");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!wait_status_) return Status::FailedPrecondition("QEMU was never started");
  return *wait_status_;
}

void QemuProcess::Kill() {
  if (!Running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
}

}  // namespace understudy::qemu
