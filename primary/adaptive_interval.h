// AdaptiveInterval: picks the checkpoint interval that keeps a VM's pause within its target.
//
// The pause grows with the pages dirtied since the previous checkpoint, and those grow with
// the time the VM ran: a shorter interval means smaller, shorter pauses (and more of them).
// From each checkpoint's measurements — how long the VM ran before it, how many pages it
// carried, how long it paused the VM — this class keeps two estimates:
//   dirty rate     pages per millisecond of running (exponentially weighted mean), and
//   pause model    pause ≈ fixed + per_page × pages (least squares with exponential
//                  forgetting: the fixed part is QEMU's stop/resume and device state, the
//                  per-page part the copy),
// and sets the interval to the longest one whose predicted pause is within
// `headroom × max_pause` (headroom leaves room for the spread around the prediction, so the
// p99 rather than the mean stays under the target). With a minimum run fraction it also keeps
// interval / (interval + pause) at or above it. The interval stays within
// [min_interval, max_interval] (max_interval: the configured checkpoint_interval_ms, the idle
// VM's rate), shrinks at once and grows by at most `max_growth` per checkpoint, so one quiet
// epoch does not undo it.
//
// "Meeting the target" is judged on what happened, not on the model: the p99 of the recent
// `window` pauses is within max_pause (and their run fraction at or above the minimum). When
// it is not, the report says why (e.g. at the shortest interval the pause is still longer).
// When the pause's fixed part alone exceeds the target, no interval can meet it and a shorter
// one would only pause the VM more often: the interval stays at max_interval_ms and the report
// says so.
//
// Pure logic: no clock reads, no threads; measurements come in as arguments. Thread safety:
// none (primary/checkpoint_pacer.h serialises calls).
#ifndef UNDERSTUDY_PRIMARY_ADAPTIVE_INTERVAL_H_
#define UNDERSTUDY_PRIMARY_ADAPTIVE_INTERVAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace understudy::primary {

struct AdaptiveIntervalOptions {
  double max_interval_ms = 50;   // the configured interval: never longer
  double min_interval_ms = 5;    // never shorter (bounds the checkpoint rate)
  double max_pause_ms = 0;       // the target; 0: no pause target
  double min_run_fraction = 0;   // in [0, 1); 0: no run-fraction target
  double headroom = 0.8;         // aim the predicted pause at this share of max_pause
  double max_growth = 1.25;      // the interval grows at most by this factor per checkpoint
  size_t window = 100;           // recent checkpoints judged for "meeting the target"
};

// One checkpoint, as measured by the COLO peer.
struct CheckpointSample {
  double run_ms = 0;    // the VM ran this long between the previous checkpoint and this one
  uint64_t pages = 0;   // pages this checkpoint carried
  double pause_ms = 0;  // it kept the VM stopped this long
};

class AdaptiveInterval {
 public:
  // REQUIRES: 0 < min_interval_ms ≤ max_interval_ms; 0 ≤ min_run_fraction < 1; headroom in
  // (0, 1]; max_growth ≥ 1; window ≥ 1.
  explicit AdaptiveInterval(AdaptiveIntervalOptions options);

  // False: no target is set; interval_ms() is always max_interval_ms.
  bool enabled() const { return options_.max_pause_ms > 0 || options_.min_run_fraction > 0; }

  void OnCheckpoint(const CheckpointSample& sample);

  double interval_ms() const { return interval_ms_; }

  struct Report {
    double interval_ms = 0;
    double dirty_pages_per_ms = 0;
    double pause_fixed_ms = 0;
    double pause_per_page_us = 0;
    double predicted_pause_ms = 0;  // at interval_ms
    double recent_pause_p99_ms = 0;
    double recent_run_fraction = 1;
    size_t recent_checkpoints = 0;
    bool meeting_target = true;     // also true while no target is set
    std::string why_not;            // empty when meeting_target
  };
  Report report() const;

 private:
  double PredictedPause(double interval_ms) const;
  void UpdateModel(const CheckpointSample& sample);
  double TargetInterval() const;

  const AdaptiveIntervalOptions options_;
  double interval_ms_;
  // Dirty rate, pages per ms of running; negative until the first sample with run time.
  double dirty_rate_ = -1;
  // Exponentially forgotten sums for pause = fixed + per_page × pages.
  double sum_w_ = 0, sum_x_ = 0, sum_y_ = 0, sum_xx_ = 0, sum_xy_ = 0;
  double fixed_ms_ = 0, per_page_ms_ = 0;
  std::deque<CheckpointSample> recent_;  // at most options_.window, newest last
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_ADAPTIVE_INTERVAL_H_
