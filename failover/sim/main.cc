// //failover/sim: runs N random schedules against the PairController (or, with --legacy,
// today's decisions) and reports the first failing one, shrunk, with the seed that replays it.
//
//   bazel run -c opt //failover/sim -- --schedules=1000000
//   bazel run //failover/sim -- --seed=1234 --schedules=1 --trace
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "failover/sim/simulator.h"

using namespace understudy::failover;

namespace {

struct Args {
  uint64_t seed = 1;
  bool seed_given = false;
  uint64_t schedules = 1000;
  sim::SimOptions options;
};

bool Parse(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--seed=", 0) == 0) {
      args.seed = std::strtoull(arg.c_str() + 7, nullptr, 10);
      args.seed_given = true;
    } else if (arg.rfind("--schedules=", 0) == 0) {
      args.schedules = std::strtoull(arg.c_str() + 12, nullptr, 10);
    } else if (arg == "--trace") {
      args.options.trace = true;
    } else if (arg == "--legacy") {
      args.options.brain = sim::BrainKind::kLegacy;
    } else if (arg == "--broken=release-before-ack") {
      args.options.fault = TestFault::kReleaseBeforeAck;
    } else if (arg == "--broken=skip-mode-check") {
      args.options.fault = TestFault::kSkipModeCheck;
    } else {
      std::fprintf(stderr,
                   "usage: sim [--schedules=N] [--seed=S] [--trace] [--legacy] "
                   "[--broken=release-before-ack|skip-mode-check]\n");
      return false;
    }
  }
  return true;
}

// Shrinks a failing schedule and prints it with the command that replays it.
void ReportFailure(const sim::Schedule& schedule, const sim::Outcome& outcome, const sim::SimOptions& options) {
  sim::SimOptions quiet = options;
  quiet.trace = false;
  std::printf("FAILED schedule seed=%llu: %s at %lld ms: %s\n", static_cast<unsigned long long>(schedule.seed),
              outcome.invariant.c_str(), static_cast<long long>(outcome.at_ms), outcome.detail.c_str());
  sim::Schedule shrunk = sim::Shrink(schedule, quiet);
  sim::Outcome again = sim::RunSchedule(shrunk, options);
  std::printf("shrunk: %s\n=> %s: %s\nreplay: bazel run //failover/sim -- --seed=%llu --schedules=1 --trace%s\n",
              sim::DescribeSchedule(shrunk).c_str(), again.invariant.c_str(), again.detail.c_str(),
              static_cast<unsigned long long>(schedule.seed),
              options.brain == sim::BrainKind::kLegacy ? " --legacy" : "");
  if (options.trace) std::printf("%s", again.trace.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, args)) return 2;
  uint64_t& seed = args.seed;
  const bool seed_given = args.seed_given;
  const uint64_t schedules = args.schedules;
  const sim::SimOptions& options = args.options;
  if (!seed_given) seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007ull;
  std::printf("seed=%llu schedules=%llu brain=%s\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(schedules), options.brain == sim::BrainKind::kLegacy ? "legacy" : "pair-controller");
  std::fflush(stdout);
  auto started = std::chrono::steady_clock::now();
  uint64_t steps = 0;
  sim::Outcome::Coverage coverage;
  for (uint64_t i = 0; i < schedules; ++i) {
    sim::Schedule schedule = sim::GenerateSchedule(seed + i, options);
    sim::SimOptions quiet = options;
    quiet.trace = false;
    sim::Outcome outcome = sim::RunSchedule(schedule, quiet);
    steps += outcome.steps;
    coverage += outcome.coverage;
    if (outcome.refused) {
      std::printf("refused to start: %s\n", outcome.detail.c_str());
      return 1;
    }
    if (!outcome.ok) {
      ReportFailure(schedule, outcome, options);
      return 1;
    }
    if (options.trace) std::printf("%s", sim::RunSchedule(schedule, options).trace.c_str());
    if ((i + 1) % 100000 == 0) {
      std::printf("  %llu schedules ok\n", static_cast<unsigned long long>(i + 1));
      std::fflush(stdout);
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("ok: %llu schedules, %llu steps, 0 invariant violations, %.1f s\n", static_cast<unsigned long long>(schedules),
              static_cast<unsigned long long>(steps), seconds);
  std::printf("exercised: %s\n", sim::DescribeCoverage(coverage).c_str());
  return 0;
}
