#include "primary/checkpoint_pacer.h"

#include <algorithm>

namespace understudy::primary {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kKeptWaits = 2048;

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

Clock::duration Millis(double ms) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

CheckpointPacer::CheckpointPacer(CheckpointPacerOptions options)
    : output_waits_for_ack_(std::move(options.output_waits_for_ack)),
      trigger_(options.trigger),
      adaptive_(options.adaptive) {}

void CheckpointPacer::OutputHeld() {
  bool first;
  {
    MutexLock lock(&mutex_);
    first = !trigger_.output_pending();
    trigger_.OnOutputHeld(Clock::now());
    first = first && trigger_.output_pending();
  }
  // Most output arrives while some is already pending: nobody to wake then.
  if (first) changed_.SignalAll();
}

void CheckpointPacer::Sealing() {
  MutexLock lock(&mutex_);
  trigger_.OnSealing();
}

Status CheckpointPacer::WaitUntilDue(Deadline deadline) {
  const bool hurry = !output_waits_for_ack_ || output_waits_for_ack_();
  MutexLock lock(&mutex_);
  if (!hurry) trigger_.OnSealing();  // nothing held is waiting for an ack
  for (;;) {
    if (stopping_) return Status::Ok();
    const Clock::time_point now = Clock::now();
    CheckpointTrigger::Decision decision = trigger_.Decide(now, Millis(adaptive_.interval_ms()));
    if (decision.start != CheckpointTrigger::Cause::kNone) {
      if (decision.output_waited) {
        if (output_waits_ms_.size() >= kKeptWaits) output_waits_ms_.erase(output_waits_ms_.begin(), output_waits_ms_.begin() + kKeptWaits / 2);
        output_waits_ms_.push_back(std::chrono::duration<double, std::milli>(*decision.output_waited).count());
      }
      return Status::Ok();
    }
    if (deadline.Expired()) return Status::DeadlineExceeded("waiting for the next checkpoint to be due");
    changed_.WaitUntil(&mutex_, std::min(decision.due, deadline.when()));
  }
}

void CheckpointPacer::OnCheckpoint(const CheckpointTiming& timing) {
  MutexLock lock(&mutex_);
  CheckpointSample sample;
  sample.pages = timing.pages;
  sample.pause_ms = std::chrono::duration<double, std::milli>(timing.pause()).count();
  if (last_loaded_ && timing.reply_sent > *last_loaded_) {
    sample.run_ms = std::chrono::duration<double, std::milli>(timing.reply_sent - *last_loaded_).count();
  }
  last_loaded_ = timing.loaded_sent;
  trigger_.OnCheckpointEnded(timing.loaded_sent);
  adaptive_.OnCheckpoint(sample);
}

void CheckpointPacer::Stop() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
  }
  changed_.SignalAll();
}

PacerStats CheckpointPacer::stats() const {
  MutexLock lock(&mutex_);
  PacerStats stats;
  stats.started_by_output = trigger_.started_by_output();
  stats.started_by_interval = trigger_.started_by_interval();
  stats.interval_ms = adaptive_.interval_ms();
  std::vector<double> recent(output_waits_ms_.end() - std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(output_waits_ms_.size()), 1000),
                             output_waits_ms_.end());
  stats.output_wait_ms_p50 = Percentile(recent, 0.5);
  stats.output_wait_ms_p99 = Percentile(recent, 0.99);
  stats.adaptive = adaptive_.enabled();
  stats.adaptive_report = adaptive_.report();
  return stats;
}

}  // namespace understudy::primary
