#include "primary/checkpoint_trigger.h"

#include <algorithm>

namespace understudy::primary {

void CheckpointTrigger::OnCheckpointStarted(TimePoint now) {
  under_way_ = true;
  last_start_ = now;
  // Whichever notification started it (ours, the timer's), ours has been used up: a second
  // one now would be wiped by the transaction's event reset.
  outstanding_since_.reset();
}

CheckpointTrigger::Decision CheckpointTrigger::Poll(TimePoint now, uint64_t in_flight) {
  // Output held during a checkpoint waits for OnCheckpointFinished; at a full window, for an
  // ack. Both are events, so nothing to wake up for.
  if (!pending_ || under_way_ || in_flight >= options_.max_in_flight) return {};
  if (outstanding_since_ && now < *outstanding_since_ + options_.request_retry) {
    return {false, *outstanding_since_ + options_.request_retry};
  }
  TimePoint earliest = now;
  if (last_request_) earliest = std::max(earliest, *last_request_ + options_.min_spacing);
  if (last_start_) earliest = std::max(earliest, *last_start_ + options_.min_spacing);
  if (now < earliest) return {false, earliest};
  outstanding_since_ = now;
  last_request_ = now;
  ++requests_;
  return {true, std::nullopt};
}

}  // namespace understudy::primary
