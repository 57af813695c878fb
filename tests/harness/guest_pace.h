// Guest pace: the freestanding test guests' loop knobs for a wanted output rate, per
// accelerator.
//
// The guests count loop iterations, not time, and the two accelerators run them at very
// different speeds on this project's machines (2-core cloud VMs whose KVM is paravirtual,
// "kvm-pvm"): the counter guest at 64 pages per pass makes ~6,400 passes/s under KVM and
// ~1,100,000 under TCG; its cost per page also differs in shape (TCG's software TLB holds
// ~256 pages, after which each page costs ~10x more). A fixed `every=500` therefore prints
// ~13 lines/s under KVM and ~2,700 under TCG. The tests' budgets were set for ~13 lines/s,
// so the harness derives the knobs from a rate, with these measured models, instead of
// fixing them.
//
// The models are free-running measurements (no checkpoints); under COLO the guest runs
// slower (stopped for each checkpoint, dirty tracking on), by a similar factor under either
// accelerator at the rates the tests use. A faster host only makes the guest print faster.
//
// Thread safety: pure functions.
#ifndef UNDERSTUDY_TESTS_HARNESS_GUEST_PACE_H_
#define UNDERSTUDY_TESTS_HARNESS_GUEST_PACE_H_

#include <cstdint>
#include <string_view>

namespace understudy::testing {

// The console rate the tests were written for: what `pages=64 every=500` gives under KVM here.
inline constexpr double kDefaultCounterLinesPerSecond = 12.5;

// The counter guest's passes per second at `pages` pages per pass under `accelerator`
// ("kvm" or "tcg"; anything else is treated as "kvm"). REQUIRES: pages >= 1.
double CounterPassesPerSecond(std::string_view accelerator, uint32_t pages);

// The counter guest's `every=` for about `lines_per_second` console lines per second.
// REQUIRES: lines_per_second > 0. Never less than 1.
uint32_t CounterEveryFor(std::string_view accelerator, uint32_t pages, double lines_per_second);

// The disk guest's `delay=` (spin iterations between records) for about `records_per_second`
// records (one sector write and one console line each) per second; 0 when the accelerator
// cannot go that fast. REQUIRES: records_per_second > 0.
uint32_t DiskGuestDelayFor(std::string_view accelerator, double records_per_second);

// The disk guest's records per second under KVM with `delay=20000`, the rate its tests were
// written for.
inline constexpr double kDefaultDiskRecordsPerSecond = 9.0;

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_GUEST_PACE_H_
