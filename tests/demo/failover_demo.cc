// The live failover drill `./quickstart.sh demo` runs: a secondary and a primary protect the
// counter guest — as three hosts (primary, secondary, etcd) in network namespaces when this
// machine allows it — the demo shows checkpoint statistics and the console as an outside
// observer sees it, then runs `ftctl drill kill-primary` (SIGKILL of the primary's QEMU and
// agent), keeps showing the console while the standby takes over, and prints the drill's
// report: timeline, detection and promotion times, output gap and verdict.
#include <cstdarg>
#include <cstdio>
#include <future>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"
#include "tests/harness/ftctl_drill.h"

using namespace understudy;
using namespace understudy::testing;
using Clock = std::chrono::steady_clock;

namespace {

// printf to the screen at once; the attribute lets the compiler check every format string.
[[gnu::format(printf, 1, 2)]] void Say(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
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
  Result<GuestAccelerator> accelerator = ChosenAccelerator();
  if (!accelerator.ok()) {
    Say("This demo needs KVM or the TCG vehicle (qemu/tcg/build.sh): %s\n", accelerator.status().ToString().c_str());
    return 1;
  }
  AgentPairOptions options;
  options.guest = {.pages = 64};
  options.separate_hosts = !NetworkLabUnavailableReason().has_value();
  Say("Understudy failover drill, the guest under %s\n",
      accelerator->name == "kvm" ? "KVM (stock QEMU)" : "TCG (the TCG test vehicle: QEMU 7.2 + qemu/tcg/*.patch)");
  Say("Starting etcd (https, client certificates required), ft-secondary and ft-primary for the counter\n"
      "guest (64 pages dirtied per pass, checkpoint every 50 ms, checkpoints over TLS 1.3)%s.\n"
      "The guest prints 1, 2, 3, ...; the observer must see each number exactly once.\n\n",
      options.separate_hosts ? ", each on its own host (a network namespace)" : " on loopback");
  Result<std::unique_ptr<AgentPair>> pair = AgentPair::Start(options, "demo");
  if (!pair.ok()) {
    Say("Could not start the pair: %s\n", pair.status().ToString().c_str());
    return 1;
  }
  console::ConsoleFollower follower = (*pair)->Follower();
  CounterTranscript transcript;
  auto show_console = [&](const std::function<bool()>& done) {
    auto next_status = Clock::now();
    while (!done()) {
      if (Clock::now() >= next_status) {
        Result<nlohmann::json> status = (*pair)->PrimaryStatus();
        if (status.ok() && status->value("state", "") != "fenced") Say("%s\n", PrimaryLine(*status).c_str());
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
  Clock::time_point watch_until = Clock::now() + std::chrono::seconds(6);
  show_console([&] { return Clock::now() >= watch_until; });

  Result<nlohmann::json> before = (*pair)->PrimaryStatus();
  double pause_p50 = before.ok() ? before->value("pause_ms_p50", 0.0) : 0;
  double pause_p99 = before.ok() ? before->value("pause_ms_p99", 0.0) : 0;
  Say("\n*** ftctl drill kill-primary: SIGKILL of the primary's QEMU and agent after 1 s ***\n\n");
  std::future<Result<nlohmann::json>> drill =
      std::async(std::launch::async, [&] { return RunFtctlDrill("kill-primary", **pair); });
  show_console([&] { return drill.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  Result<nlohmann::json> report = drill.get();
  if (!report.ok()) {
    Say("The drill could not run: %s\n", report.status().ToString().c_str());
    return 1;
  }

  Say("\nDrill report (ftctl drill kill-primary)\n  timeline, ms after the kill:\n");
  for (const nlohmann::json& event : (*report)["timeline"]) {
    Say("    %8.1f  %s\n", event.value("at_ms", 0.0), event.value("what", "").c_str());
  }
  auto millis = [](const nlohmann::json& value) { return value.is_number() ? value.get<double>() : -1.0; };
  Say("  outcome: %s\n", (*report)["outcome"].get<std::string>().c_str());
  Say("  detection %.0f ms, promotion %.0f ms, kill -> first new output %.0f ms\n", millis((*report)["detection_ms"]),
      millis((*report)["promotion_ms"]), millis((*report)["first_new_output_ms"]));
  Say("  drill verdict: %s\n", (*report)["verdict"].get<std::string>().c_str());

  Say("\nVerdict\n");
  Say("  this observer saw %llu lines, up to %llu: %s\n", static_cast<unsigned long long>(transcript.lines_observed()),
      static_cast<unsigned long long>(transcript.last_number()),
      transcript.continuous() ? "continuous (no repeat, no gap)" : transcript.violation()->c_str());
  Say("  VM pause per checkpoint before the drill: p50 %.2f ms, p99 %.2f ms\n", pause_p50, pause_p99);
  bool ok = transcript.continuous() && (*report)["continuity_held"].get<bool>() && transcript.lines_observed() > 10;
  Say("  %s\n", ok ? "PASS: the VM survived the loss of its primary" : "FAIL");
  return ok ? 0 : 1;
}
