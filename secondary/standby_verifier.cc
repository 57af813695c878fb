#include "secondary/standby_verifier.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "secondary/standby.h"

namespace understudy::secondary {

namespace {

constexpr int kVerifierNice = 10;

}  // namespace

StandbyVerifier::~StandbyVerifier() {
  if (thread_.joinable()) thread_.join();
}

void StandbyVerifier::MaybeStart(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                                 const checkpoint::RamImage& image, const std::string& device_state) {
  auto now = std::chrono::steady_clock::now();
  if (now < next_start_ || running_.load()) return;
  next_start_ = now + options_.period;
  if (thread_.joinable()) thread_.join();  // the previous one finished (running_ is false)
  // The snapshot: the agent's image keeps changing with every commit after this returns.
  Result<std::unique_ptr<checkpoint::RamImage>> copy = image.CloneCommitted();
  if (!copy.ok()) {
    Log("verify", "cannot copy the committed RAM image: " + copy.status().ToString());
    return;
  }
  running_.store(true);
  thread_ = std::thread([this, definition, stream_info, device_state, copy = std::move(*copy)]() mutable {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kVerifierNice);
    VerificationResult result = Verify(definition, stream_info, *copy, device_state);
    copy.reset();
    Log("verify", result.succeeded ? "epoch " + std::to_string(result.epoch) + " loads and runs (" +
                                         std::to_string(static_cast<int>(result.duration_seconds * 1000)) + " ms)"
                                   : "epoch " + std::to_string(result.epoch) + " does NOT load: " + result.error);
    {
      MutexLock lock(&mutex_);
      last_ = result;
    }
    if (on_result_) on_result_(result);
    running_.store(false);
  });
}

VerificationResult StandbyVerifier::Verify(const qemu::VmDefinition& definition,
                                           const checkpoint::QemuStreamInfo& stream_info,
                                           const checkpoint::RamImage& image, const std::string& device_state) {
  VerificationResult result;
  result.epoch = image.committed_epoch();
  auto started = std::chrono::steady_clock::now();
  ::mkdir(options_.runtime_dir.c_str(), 0700);
  StandbyOptions scratch_options{options_.runtime_dir, options_.qemu_binary, kVerifierNice};
  qemu::VmDefinition scratch_definition = definition;
  // Within a VM name's 64 characters (qemu/vm_definition.h), however long the VM's own is.
  scratch_definition.name = definition.name.substr(0, 57) + "-verify";
  Status status = [&]() -> Status {
    UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<Standby> scratch,
                                Standby::Start(scratch_definition, stream_info, image, scratch_options));
    UNDERSTUDY_RETURN_IF_ERROR(scratch->Promote(device_state, Deadline::AfterMillis(10000)));
    std::this_thread::sleep_for(options_.run_for);
    Result<nlohmann::json> running = scratch->process().qmp().Execute("query-status", Deadline::AfterMillis(2000));
    if (!running.ok()) return running.status().WithContext("asking the loaded guest's QEMU (log: " + scratch->process().Log() + ")");
    if (!running->value("running", false)) {
      return Status::Internal("the loaded guest stopped: status '" + running->value("status", "?") + "' (QEMU log: " +
                              scratch->process().Log() + ")");
    }
    return Status::Ok();  // the scratch QEMU dies with `scratch`
  }();
  result.succeeded = status.ok();
  if (!status.ok()) result.error = status.ToString();
  result.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.finished = std::chrono::system_clock::now();
  return result;
}

std::optional<VerificationResult> StandbyVerifier::last() const {
  MutexLock lock(&mutex_);
  return last_;
}

}  // namespace understudy::secondary
