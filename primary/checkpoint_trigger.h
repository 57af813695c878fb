// CheckpointTrigger: decides when the next checkpoint starts — at once when the guest produced
// output that the world may only see once a checkpoint carrying it is acked, otherwise when the
// interval runs out.
//
// How the agent gets a checkpoint exactly when it wants one, without asking QEMU: a COLO
// checkpoint starts with QEMU's checkpoint-request, and QEMU stops the VM only once its peer
// (this agent) answers checkpoint-reply; until then the VM runs. So the agent runs QEMU with a
// tiny `x-checkpoint-delay` (QEMU then sends the next checkpoint-request about a millisecond
// after each checkpoint) and holds the reply until this trigger says the checkpoint is due.
// Compared with asking over QMP (`migrate-set-parameters` in COLO state, which calls
// `colo_checkpoint_notify`), there is no QMP round trip, no requester thread to wake, and no
// request that QEMU wipes with the `qemu_event_reset` inside a running transaction. The
// interval is enforced here too, so an adaptive interval (primary/adaptive_interval.h) needs no
// QMP either.
//
// A checkpoint is due at
//   last start + interval                       always (the periodic upper bound), and
//   max(last end + min_spacing, output held)     while output is held that no checkpoint took,
// where "last end" is when the previous checkpoint let the VM run again (OnCheckpointEnded;
// its start until then). Spacing from the end rather than the start bounds both the rate
// (< 1000 / min_spacing per second) and the paused share of the time (the VM runs at least
// min_spacing between two pauses, however long they are). network_bench: from the start at
// 5 ms, a client with one request outstanding waited ~2 ms per request for the spacing alone.
//
// Events: OnOutputHeld(now) — called *after* the output was appended to its buffer, so output
// appended after a seal is never mistaken for output the seal took; OnSealing() — the VM is
// stopped and the held output is about to be sealed into the checkpoint; OnCheckpointEnded(t)
// — the VM runs again since t.
// Decide(now, interval): whether the checkpoint QEMU is asking for starts now (then it is
// counted and `now` becomes the last start) and otherwise when it becomes due.
//
// Pure logic: no threads, no clock reads, no I/O; time comes in as arguments.
// Thread safety: none; the owner serialises calls (primary/checkpoint_pacer.h does).
#ifndef UNDERSTUDY_PRIMARY_CHECKPOINT_TRIGGER_H_
#define UNDERSTUDY_PRIMARY_CHECKPOINT_TRIGGER_H_

#include <chrono>
#include <cstdint>
#include <optional>

namespace understudy::primary {

struct CheckpointTriggerOptions {
  // Output-triggered checkpoints start at least this long after the previous checkpoint
  // ended: the VM runs at least this long between pauses whatever the guest prints. Periodic
  // checkpoints are not held to it (the interval is never shorter).
  std::chrono::milliseconds min_spacing{2};
  // False: held output does not hurry anything (only the interval counts).
  bool output_triggered = true;
};

class CheckpointTrigger {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  enum class Cause { kNone, kOutput, kInterval };

  struct Decision {
    Cause start = Cause::kNone;  // kNone: not yet; wait until `due` (or the next event)
    TimePoint due;               // when it is (or was) due
    // When it starts because of output: how long that output had been waiting for it.
    std::optional<Duration> output_waited;
  };

  explicit CheckpointTrigger(CheckpointTriggerOptions options) : options_(options) {}

  void OnOutputHeld(TimePoint now);
  void OnSealing() { held_since_.reset(); }
  void OnCheckpointEnded(TimePoint resumed) { last_end_ = resumed; }

  // REQUIRES: interval > 0. The first call starts the clock (the initial precopy's end).
  Decision Decide(TimePoint now, Duration interval);

  bool output_pending() const { return held_since_.has_value(); }
  uint64_t started_by_output() const { return started_by_output_; }
  uint64_t started_by_interval() const { return started_by_interval_; }

 private:
  const CheckpointTriggerOptions options_;
  std::optional<TimePoint> held_since_;  // output held that no sealed checkpoint took
  std::optional<TimePoint> last_start_;
  std::optional<TimePoint> last_end_;  // of the checkpoint that started at last_start_
  uint64_t started_by_output_ = 0;
  uint64_t started_by_interval_ = 0;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CHECKPOINT_TRIGGER_H_
