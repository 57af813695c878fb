// ProtectionSession's status and metrics, and its pacer: what operators see of one pairing.
#include <algorithm>

#include "primary/protection_session.h"

namespace understudy::primary {

using nlohmann::json;

namespace {

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(fraction * (values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

std::vector<double> Recent(const std::vector<double>& values) {
  return {values.end() - std::min<size_t>(values.size(), 1000), values.end()};
}

}  // namespace

std::unique_ptr<CheckpointPacer> ProtectionSession::MakePacer() const {
  if (!config_.output_triggered_checkpoints && config_.max_pause_ms == 0 && config_.min_run_fraction == 0) return nullptr;
  CheckpointPacerOptions options;
  options.trigger.min_spacing = std::chrono::milliseconds(config_.min_checkpoint_spacing_ms);
  options.trigger.output_triggered = config_.output_triggered_checkpoints;
  options.adaptive.max_interval_ms = config_.checkpoint_interval_ms;
  options.adaptive.min_interval_ms = std::min(config_.min_checkpoint_spacing_ms, config_.checkpoint_interval_ms);
  options.adaptive.max_pause_ms = config_.max_pause_ms;
  options.adaptive.min_run_fraction = config_.min_run_fraction;
  options.output_waits_for_ack = [this] {
    ShipperStats shipping = shipper_->stats();
    // Unprotected, output goes out as it comes; fenced, it never does: nothing to hurry.
    return !shipping.unprotected && !shipping.fenced;
  };
  return std::make_unique<CheckpointPacer>(std::move(options));
}

json ProtectionSession::PacingJson() const {
  if (!pacer_) return {{"paced_by", "qemu"}, {"interval_ms", config_.checkpoint_interval_ms}};
  PacerStats stats = pacer_->stats();
  const AdaptiveInterval::Report& adaptive = stats.adaptive_report;
  return {
      {"paced_by", "agent"},
      {"interval_ms", stats.interval_ms},
      {"started_by_output", stats.started_by_output},
      {"started_by_interval", stats.started_by_interval},
      {"output_wait_ms_p50", stats.output_wait_ms_p50},
      {"output_wait_ms_p99", stats.output_wait_ms_p99},
      {"max_pause_ms", config_.max_pause_ms},
      {"min_run_fraction", config_.min_run_fraction},
      {"adaptive", stats.adaptive},
      {"meeting_target", adaptive.meeting_target},
      {"why_not", adaptive.why_not},
      {"recent_pause_ms_p99", adaptive.recent_pause_p99_ms},
      {"recent_run_fraction", adaptive.recent_run_fraction},
      {"dirty_pages_per_ms", adaptive.dirty_pages_per_ms},
      {"pause_fixed_ms", adaptive.pause_fixed_ms},
      {"pause_per_page_us", adaptive.pause_per_page_us},
      {"predicted_pause_ms", adaptive.predicted_pause_ms},
  };
}

void ProtectionSession::AddStatus(json& status) const {
  ShipperStats shipping = shipper_->stats();
  status["epoch"] = shipping.captured_epoch;
  status["shipped_epoch"] = shipping.shipped_epoch;
  status["committed_epoch"] = shipping.acked_epoch;
  status["in_flight"] = shipping.captured_epoch - std::min(shipping.captured_epoch, shipping.acked_epoch);
  status["bytes_sent"] = shipping.bytes_sent;
  status["pages_sent"] = shipping.pages_sent;
  status["compression_ratio"] = shipping.bytes_sent ? double(shipping.raw_page_bytes) / shipping.bytes_sent : 0.0;
  status["nacks"] = shipping.nacks;
  status["checkpoints_triggered"] = pacer_ ? pacer_->stats().started_by_output : 0;
  status["pacing"] = PacingJson();
  status["disk"] = disk_.StatusJson(shipping.acked_epoch);
  uint64_t held = host_.console_output().held_bytes() + (host_.relay() ? host_.network_output().held_bytes() : 0);
  status["byte_caps"] = ByteCapsStatus(config_.byte_caps,
                                       {shipping.in_flight_bytes, held, host_.disk() ? host_.disk()->unsealed_bytes() : 0},
                                       shipping.cap_crossed);
  status["last_error"] = shipping.last_error;
  MutexLock lock(&mu_);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  status["checkpoints"] = checkpoints_;
  status["checkpoints_per_second"] = colo_started_.load() && seconds > 0 ? checkpoints_ / seconds : 0.0;
  status["pause_ms_p50"] = Percentile(Recent(pauses_ms_), 0.5);
  status["pause_ms_p99"] = Percentile(Recent(pauses_ms_), 0.99);
  status["pause_phases_ms"] = pause_phases_.ToJson();
  status["commit_ms_p50"] = Percentile(Recent(commits_ms_), 0.5);
  status["commit_ms_p99"] = Percentile(Recent(commits_ms_), 0.99);
}

void ProtectionSession::SampleMetrics() const {
  monitoring::AgentMetrics& metrics = *context_.metrics;
  ShipperStats shipping = shipper_->stats();
  metrics.SetEpochs(shipping.captured_epoch, shipping.acked_epoch);
  metrics.SetInFlight(shipping.captured_epoch - std::min(shipping.captured_epoch, shipping.acked_epoch));
  metrics.SetOutputHeldBytes(host_.console_output().held_bytes());
  if (pacer_) {
    PacerStats pacing = pacer_->stats();
    metrics.SetPacing({pacing.started_by_output, pacing.interval_ms / 1000, config_.max_pause_ms / 1000.0,
                       pacing.adaptive_report.meeting_target});
  } else {
    metrics.SetPacing({0, config_.checkpoint_interval_ms / 1000.0, 0, true});
  }
  if (disk::DiskServer* served = host_.disk()) {
    auto [carried, progress] = disk_.copy_progress();
    bool committed = disk_.SecondaryHasDisk(shipping.acked_epoch);
    metrics.SetDisk({served->bytes_written(), disk_.unacked_bytes(), carried, committed ? 1.0 : std::min(progress, 0.99)});
  }
}

}  // namespace understudy::primary
