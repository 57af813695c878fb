#include "common/child_process.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"

namespace understudy {

Result<std::string> FindExecutable(const std::string& binary) {
  if (binary.find('/') != std::string::npos) {
    if (::access(binary.c_str(), X_OK) == 0) return binary;
    return Status::NotFound("'" + binary + "' does not exist or is not executable");
  }
  const char* path = std::getenv("PATH");
  std::string directories = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream stream(directories);
  std::string directory;
  while (std::getline(stream, directory, ':')) {
    std::string candidate = (directory.empty() ? "." : directory) + "/" + binary;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return Status::NotFound("'" + binary + "' not found on PATH (" + directories + ")");
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "stopped (wait status " + std::to_string(wait_status) + ")";
}

Result<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return Status::InvalidArgument("no program to run");
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string program, FindExecutable(argv[0]));
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log.valid()) return Status::FromErrno("opening log " + log_path, errno);
  (void)::fchmod(log.get(), 0600);  // an older log may have been created more open
  // exec failures travel back through this close-on-exec pipe; a clean exec closes it.
  int exec_error_pipe[2];
  if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  UniqueFd exec_error_read(exec_error_pipe[0]);
  UniqueFd exec_error_write(exec_error_pipe[1]);
  std::vector<std::string> args = argv;
  args[0] = program;
  std::vector<char*> raw_argv;
  for (std::string& arg : args) raw_argv.push_back(arg.data());
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
  ChildProcess child(pid);
  exec_error_write.reset();
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(exec_error_read.get(), &exec_errno, sizeof(exec_errno));
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof(exec_errno))) {
    child.Kill();
    return Status::FromErrno("executing " + program, exec_errno);
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), wait_status_(other.wait_status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  Kill();
  pid_ = std::exchange(other.pid_, -1);
  wait_status_ = other.wait_status_;
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

bool ChildProcess::Running() {
  if (wait_status_ || pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    wait_status_ = status;
    return false;
  }
  return true;
}

Result<int> ChildProcess::WaitForExit(Deadline deadline) {
  while (Running()) {
    if (deadline.Expired()) return Status::DeadlineExceeded("process " + std::to_string(pid_) + " still running");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!wait_status_) return Status::FailedPrecondition("no process");
  return *wait_status_;
}

void ChildProcess::Signal(int signal) {
  if (Running()) ::kill(pid_, signal);
}

void ChildProcess::Kill() {
  if (!Running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
}

Status RunCommand(const std::vector<std::string>& argv, Deadline deadline) {
  std::string command;
  for (const std::string& word : argv) command += (command.empty() ? "" : " ") + word;
  char log_template[] = "/tmp/understudy-command-XXXXXX";
  int log_fd = ::mkstemp(log_template);
  if (log_fd < 0) return Status::FromErrno("mkstemp for '" + command + "'", errno);
  ::close(log_fd);
  const std::string log_path = log_template;
  auto output = [&] {
    std::ifstream file(log_path);
    std::stringstream text;
    text << file.rdbuf();
    ::unlink(log_path.c_str());
    std::string printed = text.str();
    while (!printed.empty() && printed.back() == '\n') printed.pop_back();
    return printed.empty() ? std::string() : ": " + printed;
  };
  Result<ChildProcess> child = ChildProcess::Spawn(argv, log_path);
  if (!child.ok()) {
    ::unlink(log_path.c_str());
    return child.status().WithContext("running '" + command + "'");
  }
  Result<int> exited = child->WaitForExit(deadline);
  if (!exited.ok()) {
    child->Kill();
    return Status::DeadlineExceeded("'" + command + "' did not finish in time" + output());
  }
  if (*exited != 0) return Status::Internal("'" + command + "' " + DescribeWaitStatus(*exited) + output());
  ::unlink(log_path.c_str());
  return Status::Ok();
}

}  // namespace understudy
