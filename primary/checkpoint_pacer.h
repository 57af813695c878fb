// CheckpointPacer: decides, on the COLO peer's thread, when the checkpoint QEMU is asking for
// starts — at once for held output (with a minimum spacing), otherwise when the interval runs
// out — and keeps that interval adapted to the VM's pause target.
//
// Mechanism (see primary/checkpoint_trigger.h): QEMU runs with a ~1 ms `x-checkpoint-delay`,
// so its checkpoint-request comes right after each checkpoint; the COLO peer calls
// WaitUntilDue() before answering checkpoint-reply, and QEMU stops the VM only when it gets
// that reply. Output held meanwhile (a frame, console bytes, a completed disk write) wakes the
// wait. The interval comes from primary/adaptive_interval.h, fed with every checkpoint's run
// time, pages and pause (OnCheckpoint); without a target it is the configured interval.
//
// Thread safety: all methods are thread-safe. OutputHeld() is cheap (a short lock; a signal
// only for the first output of an epoch) and may be called from any thread: the frame relay's,
// the serial reader's, the disk server's.
#ifndef UNDERSTUDY_PRIMARY_CHECKPOINT_PACER_H_
#define UNDERSTUDY_PRIMARY_CHECKPOINT_PACER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/status.h"
#include "primary/adaptive_interval.h"
#include "primary/checkpoint_trigger.h"
#include "primary/colo_peer.h"

namespace understudy::primary {

// QEMU's x-checkpoint-delay while the pacer decides: its next checkpoint-request arrives at
// most this long after each checkpoint (0 would spin QEMU's main loop: its timer re-arms at
// "now + delay").
inline constexpr std::chrono::milliseconds kPacedQemuCheckpointDelay{1};

struct CheckpointPacerOptions {
  CheckpointTriggerOptions trigger;
  // The interval, its bounds and the pause target: adaptive.max_interval_ms is the configured
  // interval; with no target set, the interval stays there.
  AdaptiveIntervalOptions adaptive;
  // Whether held output should hurry a checkpoint now (false while unprotected: output goes
  // out without waiting for an ack, so hurrying would only cost pauses). Called on the COLO
  // peer's thread, without the pacer's lock. Unset: always.
  std::function<bool()> output_waits_for_ack;
};

struct PacerStats {
  uint64_t started_by_output = 0;
  uint64_t started_by_interval = 0;
  double interval_ms = 0;
  // How long held output waited for the checkpoint that took it (output held → VM stopping),
  // over the most recent output-triggered checkpoints.
  double output_wait_ms_p50 = 0;
  double output_wait_ms_p99 = 0;
  bool adaptive = false;  // a pause or run-fraction target is set
  AdaptiveInterval::Report adaptive_report;
};

class CheckpointPacer {
 public:
  explicit CheckpointPacer(CheckpointPacerOptions options);

  // Output was appended to a buffer that holds it until its epoch is acknowledged.
  void OutputHeld();
  // The VM is stopped and held output is about to be sealed into the current checkpoint.
  void Sealing();
  // Blocks until the checkpoint QEMU asked for is due (OK), Stop() was called (OK: stopping
  // is the caller's business), or `deadline` passes (kDeadlineExceeded).
  Status WaitUntilDue(Deadline deadline);
  // A checkpoint finished (vmstate-loaded went out): feeds the adaptive interval.
  void OnCheckpoint(const CheckpointTiming& timing);
  // Wakes and ends every wait; later waits return at once.
  void Stop();

  PacerStats stats() const;

 private:
  const std::function<bool()> output_waits_for_ack_;
  mutable Mutex mutex_;
  CondVar changed_;
  CheckpointTrigger trigger_ GUARDED_BY(mutex_);
  AdaptiveInterval adaptive_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::optional<std::chrono::steady_clock::time_point> last_loaded_ GUARDED_BY(mutex_);
  std::vector<double> output_waits_ms_ GUARDED_BY(mutex_);  // newest last, bounded
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CHECKPOINT_PACER_H_
