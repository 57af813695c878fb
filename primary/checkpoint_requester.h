// CheckpointRequester: runs a CheckpointTrigger (primary/checkpoint_trigger.h) on a thread of
// its own and performs the requests it decides on.
//
// The event methods are called from hot paths — the frame relay's thread, the serial reader,
// the disk server, the COLO peer inside the VM's pause — so they only take a short lock, set
// state and wake the requester's thread. The request itself (a QMP command, which can take as
// long as QEMU holds its global lock, e.g. a whole pause) runs on the requester's thread only.
//
// Thread safety: all public methods are thread-safe. The hooks run on the requester's thread,
// never with its lock held.
#ifndef UNDERSTUDY_PRIMARY_CHECKPOINT_REQUESTER_H_
#define UNDERSTUDY_PRIMARY_CHECKPOINT_REQUESTER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "common/status.h"
#include "primary/checkpoint_trigger.h"

namespace understudy::primary {

struct CheckpointRequesterHooks {
  // Asks QEMU for a checkpoint now. May block (bounded by its own deadline). A failure is
  // counted and logged by the caller's hook; the trigger retries later while output is held.
  std::function<Status()> request;
  // Epochs captured but not yet acknowledged; nullopt when requests make no sense (output is
  // not held any more: unprotected, fenced).
  std::function<std::optional<uint64_t>()> in_flight;
};

class CheckpointRequester {
 public:
  CheckpointRequester(CheckpointTriggerOptions options, CheckpointRequesterHooks hooks);
  ~CheckpointRequester();  // Stop()s

  // Starts the thread. Events before Start() are remembered. REQUIRES: called at most once.
  void Start();
  // Stops and joins the thread; later events are ignored. Idempotent.
  void Stop();

  // Output was appended to a buffer that holds it until its epoch is acknowledged.
  void OutputHeld();
  // QEMU's checkpoint-request arrived.
  void CheckpointStarted();
  // The VM is stopped and held output is about to be sealed into the current checkpoint.
  void Sealing();
  // The VM runs again (or the initial precopy is complete).
  void CheckpointFinished();
  // An epoch was acknowledged: the in-flight window may have room again.
  void Acked();

  // Requests made so far (successful or not) and those whose hook failed.
  uint64_t requests() const;
  uint64_t failed_requests() const;

 private:
  void Loop();
  void Changed(std::unique_lock<std::mutex>& lock);

  const CheckpointRequesterHooks hooks_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  // Protected by mutex_:
  CheckpointTrigger trigger_;
  bool dirty_ = false;  // an event since the requester's thread last looked
  bool stopping_ = false;
  uint64_t failed_ = 0;
  std::thread thread_;  // started/joined by Start()/Stop() only
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CHECKPOINT_REQUESTER_H_
