#include "qemu/qemu_process.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fd_io.h"

namespace understudy::qemu {

namespace {

std::string TailOf(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

}  // namespace

Result<std::unique_ptr<QemuProcess>> QemuProcess::Launch(const VmDefinition& definition,
                                                          const LaunchOptions& options) {
  Deadline deadline = Deadline::After(options.qmp_timeout);
  if (options.runtime_dir.empty()) return Status::InvalidArgument("LaunchOptions.runtime_dir is required");
  // Nothing starts from a definition that is not valid: only a valid one is safe inside
  // QEMU's option syntax (vm_definition.h).
  UNDERSTUDY_RETURN_IF_ERROR(definition.Validate(std::max(definition.memory_mib, DefinitionPolicy::kDefaultMaxMemoryMib)));
  Result<std::string> binary = FindExecutable(options.qemu_binary);
  if (!binary.ok()) {
    return Status::NotFound("QEMU binary " + binary.status().message() + "; install qemu-system-x86 or set qemu_binary");
  }

  std::unique_ptr<QemuProcess> process(new QemuProcess());
  process->qmp_socket_path_ = options.runtime_dir + "/qmp.sock";
  process->log_path_ = options.runtime_dir + "/qemu.log";
  ::unlink(process->qmp_socket_path_.c_str());

  std::vector<std::string>& argv = process->command_line_;
  argv.push_back(*binary);
  for (std::string& arg : definition.QemuArguments()) argv.push_back(std::move(arg));
  argv.insert(argv.end(), {"-qmp", "unix:" + process->qmp_socket_path_ + ",server=on,wait=off"});
  if (options.start_paused) argv.push_back("-S");
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());

  ::unlink(process->log_path_.c_str());
  Result<ChildProcess> child = ChildProcess::Spawn(argv, process->log_path_);
  if (!child.ok()) return child.status().WithContext("starting QEMU");
  process->child_.emplace(std::move(*child));

  // Wait for QMP, watching for an early exit: a QEMU that rejects its command line exits at
  // once, and its stderr is the only useful explanation.
  for (;;) {
    if (!process->Running()) {
      return Status::Broken("QEMU " + DescribeWaitStatus(*process->child_->wait_status()) + " during start-up: " +
                            TailOf(process->Log(), 2000));
    }
    Deadline attempt = Deadline::AfterMillis(100).Min(deadline);
    Result<std::unique_ptr<QmpClient>> qmp = QmpClient::Connect(process->qmp_socket_path_, attempt);
    if (qmp.ok()) {
      process->qmp_ = std::move(*qmp);
      return process;
    }
    if (qmp.status().code() != Status::Code::kDeadlineExceeded) {
      // QMP hung up mid-handshake: QEMU is usually exiting over a later option (a netdev, a
      // drive). Its stderr says why; give it a moment to finish saying it.
      (void)process->child_->WaitForExit(Deadline::AfterMillis(500).Min(deadline));
      std::string log_tail = TailOf(process->Log(), 2000);
      return qmp.status().WithContext("connecting to QEMU's QMP" +
                                      (log_tail.empty() ? std::string() : " (QEMU said: " + log_tail + ")"));
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

bool QemuProcess::Running() { return child_ && child_->Running(); }

Result<int> QemuProcess::WaitForExit(Deadline deadline) {
  if (!child_) return Status::FailedPrecondition("QEMU was never started");
  return child_->WaitForExit(deadline);
}

void QemuProcess::Kill() {
  if (child_) child_->Kill();
}

}  // namespace understudy::qemu
