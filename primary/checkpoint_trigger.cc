#include "primary/checkpoint_trigger.h"

#include <algorithm>

namespace understudy::primary {

void CheckpointTrigger::OnOutputHeld(TimePoint now) {
  if (options_.output_triggered && !held_since_) held_since_ = now;
}

CheckpointTrigger::Decision CheckpointTrigger::Decide(TimePoint now, Duration interval) {
  if (!last_start_) last_start_ = now;
  Decision decision;
  const TimePoint ended = last_end_ && *last_end_ > *last_start_ ? *last_end_ : *last_start_;
  // An interval shorter than a pause (an adaptive one chasing a target) still leaves the VM
  // min_spacing to run between pauses.
  TimePoint periodic = std::max(*last_start_ + interval, ended + options_.min_spacing);
  decision.due = periodic;
  bool by_output = false;
  if (held_since_) {
    TimePoint spaced = std::max(ended + options_.min_spacing, *held_since_);
    if (spaced < periodic) {
      decision.due = spaced;
      by_output = true;
    }
  }
  if (now < decision.due) return decision;
  decision.start = by_output ? Cause::kOutput : Cause::kInterval;
  if (by_output) {
    decision.output_waited = now - *held_since_;
    ++started_by_output_;
  } else {
    ++started_by_interval_;
  }
  last_start_ = now;
  return decision;
}

}  // namespace understudy::primary
