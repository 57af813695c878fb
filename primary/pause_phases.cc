#include "primary/pause_phases.h"

#include <algorithm>
#include <vector>

namespace understudy::primary {

namespace {

constexpr const char* kNames[] = {"stop", "ram", "device_state", "agent_busy", "waiting_for_qemu"};

double Ms(std::chrono::steady_clock::duration duration) {
  return std::max(0.0, std::chrono::duration<double, std::milli>(duration).count());
}

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

}  // namespace

void PausePhases::Add(const CheckpointTiming& timing) {
  // A checkpoint whose stamps are missing (the precopy's, a stream without a RAM section)
  // says nothing about the phases.
  if (timing.vmstate_send_seen < timing.reply_sent || timing.ram_end_seen < timing.vmstate_send_seen ||
      timing.loaded_sent < timing.ram_end_seen) {
    return;
  }
  const double pause = Ms(timing.pause()), busy = std::min(pause, Ms(timing.agent_busy));
  samples_.push_back({Ms(timing.vmstate_send_seen - timing.reply_sent), Ms(timing.ram_end_seen - timing.vmstate_send_seen),
                      Ms(timing.loaded_sent - timing.ram_end_seen), busy, pause - busy});
  while (samples_.size() > kept_) samples_.pop_front();
}

nlohmann::json PausePhases::ToJson() const {
  nlohmann::json phases = {{"checkpoints", samples_.size()}};
  for (size_t phase = 0; phase < kPhases; ++phase) {
    std::vector<double> values;
    values.reserve(samples_.size());
    for (const auto& sample : samples_) values.push_back(sample[phase]);
    phases[kNames[phase]] = {{"p50", Percentile(values, 0.5)}, {"p99", Percentile(values, 0.99)}};
  }
  return phases;
}

}  // namespace understudy::primary
