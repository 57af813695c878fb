// The live failover drill `./quickstart.sh demo` runs: a secondary and a primary protect the
// counter guest on this machine; the demo shows checkpoint statistics and the console as an
// outside observer sees it, SIGKILLs the primary (QEMU and agent), shows the promotion and
// the console continuing, and ends with a verdict.
#include <cstdio>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

using namespace understudy;
using namespace understudy::testing;
using Clock = std::chrono::steady_clock;

namespace {

void Say(const char* format, auto... args) {
  std::printf(format, args...);
  std::fflush(stdout);
}

std::string PrimaryLine(const nlohmann::json& s) {
  char text[256];
  std::snprintf(text, sizeof(text), "[primary  ] %-10s epoch %4llu  committed %4llu  %4.1f ckpt/s  pause p50 %.2f ms p99 %.2f ms",
                s.value("state", "?").c_str(), static_cast<unsigned long long>(s.value("epoch", 0ull)),
                static_cast<unsigned long long>(s.value("committed_epoch", 0ull)), s.value("checkpoints_per_second", 0.0),
                s.value("pause_ms_p50", 0.0), s.value("pause_ms_p99", 0.0));
  return text;
}

}  // namespace

int main() {
  if (auto reason = KvmUnavailableReason()) {
    Say("This demo needs KVM: %s\n", reason->c_str());
    return 1;
  }
  Say("Understudy failover drill\n");
  Say("Starting ft-secondary and ft-primary for the counter guest (64 pages dirtied per pass,\n"
      "checkpoint every 50 ms). The guest prints 1, 2, 3, ...; the observer must see each number once.\n\n");
  AgentPairOptions options;
  options.guest = {.pages = 64, .every = 500};
  Result<std::unique_ptr<AgentPair>> pair = AgentPair::Start(options, "demo");
  if (!pair.ok()) {
    Say("Could not start the pair: %s\n", pair.status().ToString().c_str());
    return 1;
  }
  console::ConsoleFollower follower = (*pair)->Follower();
  CounterTranscript transcript;
  auto show_console = [&](Clock::time_point until) {
    auto next_status = Clock::now();
    while (Clock::now() < until) {
      if (Clock::now() >= next_status) {
        Result<nlohmann::json> status = (*pair)->PrimaryStatus();
        if (status.ok()) Say("%s\n", PrimaryLine(*status).c_str());
        next_status = Clock::now() + std::chrono::seconds(1);
      }
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
      if (line.ok()) {
        transcript.Observe(*line);
        Say("[console  ] %s\n", line->c_str());
      }
    }
  };
  Say("Protected. Watching for 6 seconds...\n");
  show_console(Clock::now() + std::chrono::seconds(6));

  Result<nlohmann::json> before = (*pair)->PrimaryStatus();
  double pause_p50 = before.ok() ? before->value("pause_ms_p50", 0.0) : 0;
  double pause_p99 = before.ok() ? before->value("pause_ms_p99", 0.0) : 0;
  uint64_t last_before = transcript.last_number();
  Say("\n*** SIGKILL the primary's QEMU and agent (last number seen: %llu) ***\n\n",
      static_cast<unsigned long long>(last_before));
  Clock::time_point killed = Clock::now();
  (*pair)->KillPrimary();

  double failover_ms = -1;
  Clock::time_point until = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < until && failover_ms < 0) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(200));
    if (!line.ok()) continue;
    transcript.Observe(*line);
    if (transcript.last_number() > last_before) {
      failover_ms = std::chrono::duration<double, std::milli>(Clock::now() - killed).count();
    }
    Say("[console  ] %s%s\n", line->c_str(), failover_ms >= 0 ? "   <- first new output, from the promoted standby" : "");
  }
  Result<nlohmann::json> secondary = (*pair)->SecondaryStatus();
  if (secondary.ok()) {
    Say("[secondary] %s at epoch %llu, promoted in %.1f ms\n", secondary->value("state", "?").c_str(),
        static_cast<unsigned long long>(secondary->value("committed_epoch", 0ull)), secondary->value("promotion_ms", 0.0));
  }
  auto end = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < end) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(200));
    if (!line.ok()) continue;
    transcript.Observe(*line);
    Say("[console  ] %s\n", line->c_str());
  }

  Say("\nVerdict\n");
  Say("  observer saw %llu lines, 1..%llu: %s\n", static_cast<unsigned long long>(transcript.lines_observed()),
      static_cast<unsigned long long>(transcript.last_number()),
      transcript.continuous() ? "continuous (no repeat, no gap)" : transcript.violation()->c_str());
  Say("  VM pause per checkpoint: p50 %.2f ms, p99 %.2f ms\n", pause_p50, pause_p99);
  Say("  failover: kill -> first new output %.0f ms (standby promotion %.1f ms)\n", failover_ms,
      secondary.ok() ? secondary->value("promotion_ms", 0.0) : -1.0);
  bool ok = transcript.continuous() && failover_ms >= 0;
  Say("  %s\n", ok ? "PASS: the VM survived the loss of its primary" : "FAIL");
  return ok ? 0 : 1;
}
