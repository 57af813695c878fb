#include "tests/harness/guest_pace.h"

#include <algorithm>
#include <cmath>

namespace understudy::testing {

namespace {

struct PaceSample {
  double pages;
  double passes_per_second;
};

// Measured on this project's 2-core machines (Debian's QEMU 7.2 under KVM; the TCG vehicle,
// the same QEMU version, under TCG), counter guest with 64 MiB, free-running, 5 s windows
// after boot; 2026-12-06, on a loaded machine (expect +-20%).
constexpr PaceSample kKvmCounter[] = {{1, 110000}, {16, 22500}, {64, 6250},  {256, 1550},
                                      {1024, 370}, {4096, 80},  {16384, 20}};
constexpr PaceSample kTcgCounter[] = {{1, 1.1e8},  {16, 6.1e6},  {64, 1.1e6},  {256, 2.0e5},
                                      {1024, 6800}, {4096, 1600}, {16384, 640}};

// The disk guest: each record costs a fixed I/O part (IDE PIO of the verify and the write, and
// the console line) plus `delay` spin iterations. Measured with delay=0 and 20000 (KVM) and
// 0, 2e6 and 2e7 (TCG).
struct DiskModel {
  double io_seconds;
  double seconds_per_spin;
};
constexpr DiskModel kKvmDisk = {28.6e-3, 4.125e-6};
constexpr DiskModel kTcgDisk = {1.3e-3, 6e-9};

bool IsTcg(std::string_view accelerator) { return accelerator == "tcg"; }

// Log-log interpolation between samples; beyond the last, the cost grows linearly in pages.
template <size_t N>
double Interpolate(const PaceSample (&samples)[N], double pages) {
  if (pages <= samples[0].pages) return samples[0].passes_per_second;
  for (size_t i = 1; i < N; ++i) {
    if (pages <= samples[i].pages) {
      const PaceSample& a = samples[i - 1];
      const PaceSample& b = samples[i];
      double t = std::log(pages / a.pages) / std::log(b.pages / a.pages);
      return std::exp(std::log(a.passes_per_second) + t * std::log(b.passes_per_second / a.passes_per_second));
    }
  }
  const PaceSample& last = samples[N - 1];
  return last.passes_per_second * last.pages / pages;
}

}  // namespace

double CounterPassesPerSecond(std::string_view accelerator, uint32_t pages) {
  const double n = std::max<uint32_t>(pages, 1);
  return IsTcg(accelerator) ? Interpolate(kTcgCounter, n) : Interpolate(kKvmCounter, n);
}

uint32_t CounterEveryFor(std::string_view accelerator, uint32_t pages, double lines_per_second) {
  double every = std::round(CounterPassesPerSecond(accelerator, pages) / lines_per_second);
  return static_cast<uint32_t>(std::clamp(every, 1.0, 4e9));
}

uint32_t DiskGuestDelayFor(std::string_view accelerator, double records_per_second) {
  const DiskModel& model = IsTcg(accelerator) ? kTcgDisk : kKvmDisk;
  double spin_seconds = 1.0 / records_per_second - model.io_seconds;
  if (spin_seconds <= 0) return 0;
  return static_cast<uint32_t>(std::min(std::round(spin_seconds / model.seconds_per_spin), 4e9));
}

}  // namespace understudy::testing
