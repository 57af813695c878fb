// Small helpers every benchmark in bench/ shares: timing, order statistics, the memcpy
// baseline, plain-text tables, and writing a benchmark's section of bench/RESULTS.md.
//
// Absolute times on a shared 2-core machine are noisy, so benchmarks report ratios against a
// baseline measured in the same run (MemcpyBaseline) and medians over repetitions.
//
// Thread safety: stateless functions and plain values; use a Table from one thread.
#ifndef UNDERSTUDY_BENCH_BENCH_UTIL_H_
#define UNDERSTUDY_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace understudy::bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Order statistics over a copy of `values` (nearest rank). 0 for an empty input.
// REQUIRES: 0 <= fraction <= 1.
double Percentile(std::vector<double> values, double fraction);
inline double Median(std::vector<double> values) { return Percentile(std::move(values), 0.5); }

// Keeps the compiler from discarding work whose result is otherwise unused.
void DoNotOptimize(const void* pointer);

// The seconds a single-threaded memcpy takes to copy `chunk_sizes` bytes, one memcpy per
// chunk, from `source` into a separate destination of the same total size — the same bytes,
// in the same pieces, as the operation it is compared with. Median of `repetitions` runs.
// REQUIRES: the chunk sizes sum to at most source.size().
double MemcpyBaselineSeconds(std::span<const std::byte> source, const std::vector<size_t>& chunk_sizes,
                             int repetitions);

// Megabytes (10^6 bytes) per second.
inline double MegabytesPerSecond(double bytes, double seconds) { return seconds > 0 ? bytes / seconds / 1e6 : 0; }

// "64,1024,8192" → {64, 1024, 8192}. Exits with a message on a malformed list (flag parsing).
std::vector<uint32_t> ParseUintList(const std::string& list);

// printf into a std::string.
std::string Format(const char* format, ...) __attribute__((format(printf, 1, 2)));

// A table printed as GitHub markdown (readable as plain text too). The first `text_columns`
// columns are left-aligned labels; the rest are right-aligned numbers.
class Table {
 public:
  explicit Table(std::vector<std::string> header, size_t text_columns = 1)
      : header_(std::move(header)), text_columns_(text_columns) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Markdown() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  size_t text_columns_;
};

// "2026-11-26 01:02 UTC".
std::string UtcNow();

// "2 cores, paravirtual KVM, QEMU 7.2.22" — core count from the OS; `qemu_version` as QMP
// greeted (empty: asks `qemu-system-x86_64 --version`).
std::string MachineDescription(std::string_view qemu_version = "");

// "-c opt" when this binary was compiled with optimisation, else "fastbuild (-O0: not
// representative)". opt_binary.bzl builds benchmarks and the agents they start alike.
std::string BuildMode();

// The machine's 1-minute load average now (/proc/loadavg); negative when unreadable. Benchmarks
// print it beside each row: this machine is shared, and load distorts absolute times.
double LoadAverage1();

// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in
// $BUILD_WORKSPACE_DIRECTORY/bench/RESULTS.md with `body` (appending a new "## NAME" section
// with the markers when they are missing). Text outside the markers — hand-written analysis —
// is kept. kFailedPrecondition when not started by `bazel run` (no BUILD_WORKSPACE_DIRECTORY);
// kIOError when the file cannot be read or written. Returns the file's path on success in
// `written_path`.
Status UpdateResultsSection(std::string_view name, std::string_view body, std::string* written_path);

// Prints a benchmark's results section and, when `write` is set, records it in RESULTS.md
// (UpdateResultsSection), saying where it went or why it could not.
void PublishResults(std::string_view name, const std::string& body, bool write);

}  // namespace understudy::bench

#endif  // UNDERSTUDY_BENCH_BENCH_UTIL_H_
