// SecondaryAgent: promotion, fencing and the owner role after a promotion (the seam with
// primary/, see secondary/owner_role.h).
#include <array>

#include "common/fd_io.h"
#include "common/log.h"
#include "secondary/secondary_agent.h"
#include "secondary/vm_owner_role.h"

namespace understudy::secondary {

void SecondaryAgent::Promote() {
  const auto started = std::chrono::steady_clock::now();
  const uint64_t epoch = committer_->committed_epoch();
  Log("secondary", "promoting the standby at epoch " + std::to_string(epoch) + ": the ownership record is ours");
  Status promoted = committer_->image() ? standby_->Promote(*committer_->definition(), *committer_->stream_info(),
                                                            *committer_->image(), committer_->device_state())
                                        : Status::FailedPrecondition("nothing committed to promote");
  if (!promoted.ok()) {
    // The record is ours and the VM cannot run here: the controller fences (nothing to release).
    Log("secondary", "the promoted VM did not start: " + promoted.ToString());
    {
      MutexLock lock(&status_mutex_);
      last_error_ = promoted.ToString();
    }
    Post(failover::Event::Of(failover::EventKind::kLocalVmDied, 0));
    return;
  }
  serial_thread_ = std::thread([this] { SerialLoop(); });
  const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::chrono::steady_clock::time_point since;
  {
    MutexLock lock(&status_mutex_);
    promotion_ms_ = elapsed;
    vm_running_ = true;
    standby_qemu_pid_ = standby_->pid();
    since = failing_over_since_;
  }
  transitions_.Record("promoting", "promoted", "the standby runs from epoch " + std::to_string(epoch));
  metrics_->SetPairState("promoted");
  metrics_->CountFailover(std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
  Log("secondary", "promoted: the guest runs from epoch " + std::to_string(epoch) + " after " + std::to_string(elapsed) +
                       " ms; console continues at offset " + std::to_string(console_.end()));
}

void SecondaryAgent::Fence() {
  standby_->Discard();  // this copy of the VM must never run
  MutexLock lock(&status_mutex_);
  standby_qemu_pid_ = 0;
  vm_running_ = false;
  // Silent from now on: a fenced side is gone, for its peer's detector too.
  if (heartbeat_) heartbeat_->Pause(true);
  Log("secondary", "fenced: the standby is discarded and this side stays silent");
}

void SecondaryAgent::SerialLoop() {
  // The promoted VM runs unprotected here: its output is released as it comes.
  std::array<std::byte, 4096> buffer;
  while (!stop_requested_.load() && !serial_stop_.load()) {
    Result<size_t> count = ReadSome(standby_->serial_fd(), buffer, Deadline::AfterMillis(100));
    if (count.ok()) {
      Status appended = console_.Append(console_.end(), {reinterpret_cast<const char*>(buffer.data()), *count});
      if (!appended.ok()) Log("secondary", appended.ToString());
    } else if (count.status().code() != Status::Code::kDeadlineExceeded) {
      Log("secondary", "the promoted VM's console closed: " + count.status().ToString());
      return;
    }
  }
}

Status SecondaryAgent::RunAsOwner() {
  if (!console_server_) {
    UNDERSTUDY_ASSIGN_OR_RETURN(console_server_, console::ConsoleServer::Start(config_.console_socket(), console_));
  }
  bool has_owner;
  {
    MutexLock lock(&status_mutex_);
    has_owner = owner_ != nullptr;
  }
  if (config_.reprotect && !has_owner) StartOwnerRole();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return Status::Ok();
}

void SecondaryAgent::StartOwnerRole() {
  Result<std::unique_ptr<transport::Channel>> channel =
      transport::Dial(config_.reprotect->secondary_uri, config_.reprotect->channel, Deadline::AfterMillis(500));
  if (!channel.ok()) {
    if (std::chrono::steady_clock::now() >= next_reprotect_log_) {
      Log("secondary", "running unprotected; no new secondary at " + config_.reprotect->secondary_uri + " yet (" +
                           channel.status().message() + ")");
      next_reprotect_log_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    return;
  }
  Log("secondary", "a new secondary answered at " + config_.reprotect->secondary_uri + ": protecting the VM again");
  // From here on the guest's output is held until the new secondary acks it: stop releasing
  // it directly. Every byte the serial loop read is already in console_.
  serial_stop_.store(true);
  if (serial_thread_.joinable()) serial_thread_.join();
  primary::PromotedStandby standby{*committer_->definition(), &standby_->standby()->process().qmp(), standby_->pid(),
                                   standby_->TakeSerial(),   &console_,
                                   &metrics_server_->registry(), committer_->disk_server()};
  if (network::FrameRelay* relay = standby_->relay()) {
    standby.relay = relay;
    standby.released_network = &released_network_;
  }
  std::shared_ptr<failover::ControllerDriver> driver = this->driver();
  if (!driver) return;
  auto role = std::make_unique<VmOwnerRole>(driver);
  VmOwnerRole* starting = role.get();  // owner_ lives until the agent's destructor
  {
    MutexLock lock(&status_mutex_);
    heartbeat_.reset();  // the owner heartbeats from this host's heartbeat address
    // Stored before it starts: the controller's kPair for the first new secondary may come
    // while Start runs, and must find the role.
    owner_ = std::move(role);
  }
  Status started = starting->Start(*config_.reprotect, config_.failover, std::move(standby), incarnation_.load() + 1,
                                 std::move(*channel));
  if (!started.ok()) {
    // The VM keeps running here, alone; its output is no longer released (the owner never
    // started), so this is the operator's to see.
    Log("secondary", "cannot protect the VM again: " + started.ToString());
    MutexLock lock(&status_mutex_);
    last_error_ = started.ToString();
    return;
  }
  transitions_.Record("promoted", "re-protecting", "a new secondary at " + config_.reprotect->secondary_uri);
}

void SecondaryAgent::StopOwner() {
  OwnerRole* owner;
  {
    MutexLock lock(&status_mutex_);
    owner = owner_.get();  // once set, it lives until the agent's destructor
  }
  // Not under status_mutex_: the clean stop's actions come back through Carry, which takes it.
  if (owner) owner->Stop();
}

Result<nlohmann::json> SecondaryAgent::StepDownOwner() {
  OwnerRole* owner;
  {
    MutexLock lock(&status_mutex_);
    owner = owner_.get();  // once set, it lives until the agent's destructor
  }
  if (!owner) return Status::FailedPrecondition("this agent does not run a protected VM");
  // Not under status_mutex_: the controller's actions for the step-down come back through
  // Carry, which takes it.
  UNDERSTUDY_RETURN_IF_ERROR(owner->StepDown());
  return nlohmann::json{{"stepped_down", true}};
}

}  // namespace understudy::secondary
