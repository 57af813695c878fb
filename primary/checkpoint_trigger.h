// CheckpointTrigger: decides when the primary asks QEMU for a checkpoint *now* because the
// guest produced output that the world may only see once a checkpoint carrying it is acked.
//
// Without it every reply waits for the next periodic checkpoint (up to a whole interval).
// With it, held output costs one pause plus one ack. QEMU 7.2 starts a checkpoint at once when
// `x-checkpoint-delay` is set in COLO state (`migrate_params_apply` → `colo_checkpoint_notify`,
// which also re-arms the periodic timer); the periodic interval stays the upper bound.
//
// Why the rules below (QEMU's migration/colo.c): a notification that arrives while a
// checkpoint transaction runs, before QEMU reads vmstate-received, is wiped by the
// transaction's `qemu_event_reset` — so asking while a checkpoint is under way is wasted, and
// output held meanwhile must trigger the next one as soon as this one finishes.
//
// The events, in the order the COLO peer sees them for each checkpoint:
//   OnCheckpointStarted  QEMU's checkpoint-request arrived (ours or the periodic timer's)
//   OnSealing            the VM is stopped; output held so far rides this checkpoint
//   OnCheckpointFinished vmstate-loaded went out: the VM runs again (also: the initial
//                        precopy is complete — until then no request is made)
// and at any time OnOutputHeld (a frame, console bytes, a completed disk write) — called
// *after* the output was appended to its buffer, so that output appended after a seal is
// never mistaken for output the seal took.
//
// Poll(now, in_flight) says whether to request now and, if not, when to look again (or
// nothing: wait for the next event). A request is made only when output is pending, no
// checkpoint is under way, fewer than max_in_flight epochs are unacknowledged, and at least
// min_spacing has passed since the last request and the last checkpoint start; an
// outstanding request that QEMU has not acted on within `request_retry` may be repeated
// (its notification can be lost to the reset above).
//
// Pure logic: no threads, no clock reads, no I/O; time comes in as arguments.
// Thread safety: none; the owner serialises calls (primary/checkpoint_requester.h does).
#ifndef UNDERSTUDY_PRIMARY_CHECKPOINT_TRIGGER_H_
#define UNDERSTUDY_PRIMARY_CHECKPOINT_TRIGGER_H_

#include <chrono>
#include <cstdint>
#include <optional>

namespace understudy::primary {

struct CheckpointTriggerOptions {
  // Requests are at least this far apart, and this far after any checkpoint's start: it bounds
  // the checkpoint rate (≤ 1000 / min_spacing per second) whatever the guest prints.
  std::chrono::milliseconds min_spacing{5};
  // No request while this many epochs are captured but unacknowledged: the checkpoint would
  // wait for room anyway (CheckpointShipper::WaitForRoom). An ack makes the owner Poll again.
  uint64_t max_in_flight = 4;
  // A request QEMU has not answered with a checkpoint-request after this long is repeated.
  // REQUIRES: ≥ min_spacing.
  std::chrono::milliseconds request_retry{25};
};

class CheckpointTrigger {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Decision {
    bool request = false;              // ask QEMU for a checkpoint now (already counted)
    std::optional<TimePoint> recheck;  // when !request: Poll again then, even without events
  };

  explicit CheckpointTrigger(CheckpointTriggerOptions options) : options_(options) {}

  void OnOutputHeld() { pending_ = true; }
  void OnCheckpointStarted(TimePoint now);
  void OnSealing() { pending_ = false; }
  void OnCheckpointFinished() { under_way_ = false; }

  Decision Poll(TimePoint now, uint64_t in_flight);

  uint64_t requests() const { return requests_; }
  bool pending() const { return pending_; }

 private:
  const CheckpointTriggerOptions options_;
  bool pending_ = false;     // output held that no checkpoint under way has sealed
  bool under_way_ = true;    // a checkpoint (at first: the initial precopy) is in progress
  std::optional<TimePoint> outstanding_since_;  // our last request, until a checkpoint starts
  std::optional<TimePoint> last_request_;
  std::optional<TimePoint> last_start_;
  uint64_t requests_ = 0;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CHECKPOINT_TRIGGER_H_
