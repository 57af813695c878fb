#include "primary/adaptive_interval.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace understudy::primary {

namespace {

// Per checkpoint, older samples count this much less in the pause model (≈ the last 10-20
// checkpoints matter), and the dirty rate's newest sample weighs this much.
constexpr double kModelForgetting = 0.9;
constexpr double kRateWeight = 0.2;
// Fewer recent checkpoints than this: too few to judge the target.
constexpr size_t kMinJudged = 10;

std::string Format(const char* format, double a, double b, double c) {
  char text[256];
  std::snprintf(text, sizeof(text), format, a, b, c);
  return text;
}

}  // namespace

AdaptiveInterval::AdaptiveInterval(AdaptiveIntervalOptions options)
    : options_(options), interval_ms_(options.max_interval_ms) {}

void AdaptiveInterval::UpdateModel(const CheckpointSample& sample) {
  const double x = static_cast<double>(sample.pages), y = sample.pause_ms;
  sum_w_ = sum_w_ * kModelForgetting + 1;
  sum_x_ = sum_x_ * kModelForgetting + x;
  sum_y_ = sum_y_ * kModelForgetting + y;
  sum_xx_ = sum_xx_ * kModelForgetting + x * x;
  sum_xy_ = sum_xy_ * kModelForgetting + x * y;
  const double mean_x = sum_x_ / sum_w_, mean_y = sum_y_ / sum_w_;
  const double spread = sum_w_ * sum_xx_ - sum_x_ * sum_x_;  // sum_w² × variance of pages
  // Pages spread by less than ~10% of their mean say nothing about the slope (a steady guest
  // at a settled interval): keep the fixed part learnt so far (at first none: the pause then
  // shrinks in proportion, and the shorter epochs that follow spread the pages) and fit the
  // per-page part through the mean.
  if (spread <= 0.01 * sum_x_ * sum_x_) {
    if (mean_x <= 0) {
      fixed_ms_ = mean_y;
      return;
    }
    fixed_ms_ = std::min(fixed_ms_, mean_y);
    per_page_ms_ = (mean_y - fixed_ms_) / mean_x;
    return;
  }
  per_page_ms_ = (sum_w_ * sum_xy_ - sum_x_ * sum_y_) / spread;
  fixed_ms_ = mean_y - per_page_ms_ * mean_x;
  if (per_page_ms_ < 0) {  // noise: bigger checkpoints are not faster
    per_page_ms_ = 0;
    fixed_ms_ = mean_y;
  } else if (fixed_ms_ < 0) {
    fixed_ms_ = 0;
    per_page_ms_ = sum_xx_ > 0 ? sum_xy_ / sum_xx_ : 0;
  }
}

double AdaptiveInterval::PredictedPause(double interval_ms) const {
  return fixed_ms_ + per_page_ms_ * std::max(dirty_rate_, 0.0) * interval_ms;
}

double AdaptiveInterval::TargetInterval() const {
  // The longest interval within the pause target. It also gives the highest run fraction
  // (interval / (interval + pause) grows with the interval), so a run-fraction target is a
  // check on the outcome, never a reason to pick another interval.
  double target = options_.max_interval_ms;
  if (options_.max_pause_ms <= 0 || dirty_rate_ <= 0) return target;
  const double budget = options_.headroom * options_.max_pause_ms - fixed_ms_;
  // The fixed part alone exceeds the target: no interval meets it, and a shorter one would
  // only pause the VM more often. Report the miss (report()) and keep the configured interval.
  if (budget <= 0) return target;
  const double pause_per_ms_run = per_page_ms_ * dirty_rate_;
  if (pause_per_ms_run > 0) target = std::min(target, budget / pause_per_ms_run);
  return target;
}

void AdaptiveInterval::OnCheckpoint(const CheckpointSample& sample) {
  recent_.push_back(sample);
  while (recent_.size() > options_.window) recent_.pop_front();
  if (!enabled()) return;
  if (sample.run_ms > 0) {
    const double rate = static_cast<double>(sample.pages) / sample.run_ms;
    dirty_rate_ = dirty_rate_ < 0 ? rate : dirty_rate_ + kRateWeight * (rate - dirty_rate_);
  }
  UpdateModel(sample);
  const double wanted = std::min(TargetInterval(), interval_ms_ * options_.max_growth);
  interval_ms_ = std::clamp(wanted, options_.min_interval_ms, options_.max_interval_ms);
}

AdaptiveInterval::Report AdaptiveInterval::report() const {
  Report report;
  report.interval_ms = interval_ms_;
  report.dirty_pages_per_ms = std::max(dirty_rate_, 0.0);
  report.pause_fixed_ms = fixed_ms_;
  report.pause_per_page_us = per_page_ms_ * 1000;
  report.predicted_pause_ms = PredictedPause(interval_ms_);
  report.recent_checkpoints = recent_.size();
  if (recent_.empty()) return report;
  std::vector<double> pauses;
  double run = 0, paused = 0;
  for (const CheckpointSample& sample : recent_) {
    pauses.push_back(sample.pause_ms);
    run += sample.run_ms;
    paused += sample.pause_ms;
  }
  const size_t p99 = static_cast<size_t>(0.99 * static_cast<double>(pauses.size() - 1) + 0.5);
  std::nth_element(pauses.begin(), pauses.begin() + static_cast<std::ptrdiff_t>(p99), pauses.end());
  report.recent_pause_p99_ms = pauses[p99];
  report.recent_run_fraction = run + paused > 0 ? run / (run + paused) : 1;
  if (!enabled() || recent_.size() < kMinJudged) return report;
  const bool unreachable = options_.max_pause_ms > 0 && fixed_ms_ >= options_.headroom * options_.max_pause_ms;
  const bool at_floor = interval_ms_ <= options_.min_interval_ms;
  if (options_.max_pause_ms > 0 && report.recent_pause_p99_ms > options_.max_pause_ms) {
    report.meeting_target = false;
    report.why_not = Format("pause p99 %.2f ms exceeds max_pause_ms %.2f (interval %.1f ms", report.recent_pause_p99_ms,
                            options_.max_pause_ms, interval_ms_);
    if (unreachable) {
      report.why_not += Format("; the fixed part of a pause alone is ~%.2f ms, so no interval can meet it)", fixed_ms_, 0, 0);
    } else {
      report.why_not += at_floor ? Format(", the shortest allowed; the fixed part of a pause is ~%.2f ms)", fixed_ms_, 0, 0)
                                 : std::string(")");
    }
  }
  if (options_.min_run_fraction > 0 && report.recent_run_fraction < options_.min_run_fraction) {
    report.meeting_target = false;
    if (!report.why_not.empty()) report.why_not += "; ";
    report.why_not += Format("the VM ran %.1f%% of the time, below min_run_fraction %.1f%% (interval %.1f ms)",
                             100 * report.recent_run_fraction, 100 * options_.min_run_fraction, interval_ms_);
  }
  return report;
}

}  // namespace understudy::primary
