// The live failover drill `./quickstart.sh demo` runs. By default (--guest=linux) a secondary
// and a primary protect a real Linux VM running Redis (tests/guests/linux/build.sh) — as three
// hosts (primary, secondary, etcd) in network namespaces when this machine allows it — while
// three redis-cli clients INCR their own counters through the VM's virtio-net NIC. The demo
// shows checkpoint statistics, the clients' progress and the guest's console as an outside
// observer sees them, runs `ftctl drill kill-primary` (SIGKILL of the primary's QEMU and
// agent), keeps showing them while the standby takes over, and ends with the drill's report
// and a verdict: every client's replies one serial history (no lost or repeated increment),
// the console continuous.
//
// --guest=counter runs the older, smaller drill on the freestanding counter guest (KVM where
// /dev/kvm works, else the TCG vehicle).
#include <cstdarg>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"
#include "tests/harness/ftctl_drill.h"
#include "tests/harness/linux_guest_pair.h"
#include "tests/harness/redis_clients.h"

using namespace understudy;
using namespace understudy::testing;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kClients = 3;

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

// The clients' progress since the last call, one screen line: each counter's latest reply and
// the longest wait for a reply.
class ClientTicker {
 public:
  void Record(int client, const IncrOutcome& outcome) {
    MutexLock lock(&mu_);
    Latest& latest = latest_[client];
    if (outcome.answered) {
      latest.reply = outcome.reply;
      ++replies_;
    } else {
      ++failures_;
      last_error_ = outcome.error;
    }
    longest_ms_ = std::max(longest_ms_, outcome.latency_ms);
  }
  // "" before the first request finished.
  std::string Line() {
    MutexLock lock(&mu_);
    if (latest_.empty() && failures_ == 0) return "";
    std::string line = "[clients  ]";
    for (const auto& [client, latest] : latest_) {
      line += "  counter:" + std::to_string(client) + " = " + (latest.reply.empty() ? "-" : latest.reply);
    }
    char tail[160];
    std::snprintf(tail, sizeof(tail), "   (%d replies, longest wait %.0f ms%s)", replies_, longest_ms_,
                  failures_ > 0 ? ", FAILED requests" : "");
    line += tail;
    if (failures_ > 0) line += ": " + last_error_;
    replies_ = 0;
    failures_ = 0;
    longest_ms_ = 0;
    return line;
  }

 private:
  struct Latest {
    std::string reply;
  };
  Mutex mu_;
  std::map<int, Latest> latest_ GUARDED_BY(mu_);
  int replies_ GUARDED_BY(mu_) = 0;
  int failures_ GUARDED_BY(mu_) = 0;
  double longest_ms_ GUARDED_BY(mu_) = 0;
  std::string last_error_ GUARDED_BY(mu_);
};

// Why the Linux guest runs under TCG on this machine, whatever the other guests use.
std::string WhyTcgForLinux() {
  if (auto why_not = KvmUnavailableReason()) return "this machine has no usable /dev/kvm (" + *why_not + ")";
  return "this machine's /dev/kvm is a paravirtual KVM that runs small freestanding guests but cannot boot a Linux "
         "kernel (\"KVM internal error. Suberror: 1\")";
}

// The drill needs a protected pair. On a machine overloaded for seconds at a time (a 2-core
// machine shared with builds), heartbeats can miss their 150 ms budget and the pair leave
// protection before the drill: say that plainly rather than let the drill refuse.
bool StillProtected(const Result<nlohmann::json>& status) {
  if (status.ok() && status->value("state", "") == "protected") return true;
  std::string why = status.ok() ? "the primary is '" + status->value("state", "?") + "'" : status.status().ToString();
  if (status.ok()) {
    for (const nlohmann::json& transition : status->value("transitions", nlohmann::json::array())) {
      if (!transition.value("why", "").empty()) why += "; " + transition.value("to", "") + ": " + transition.value("why", "");
    }
  }
  double load[1] = {0};
  if (::getloadavg(load, 1) != 1) load[0] = -1;
  Say("\nThe pair left protection before the drill (%s). Load average now %.1f: on an overloaded machine the\n"
      "agents' heartbeats can miss their 150 ms budget. Run the demo again on a quieter machine.\n",
      why.c_str(), load[0]);
  return false;
}

void PrintDrillReport(const nlohmann::json& report) {
  Say("\nDrill report (ftctl drill kill-primary)\n  timeline, ms after the kill:\n");
  for (const nlohmann::json& event : report["timeline"]) {
    Say("    %8.1f  %s\n", event.value("at_ms", 0.0), event.value("what", "").c_str());
  }
  auto millis = [](const nlohmann::json& value) { return value.is_number() ? value.get<double>() : -1.0; };
  Say("  outcome: %s\n", report.value("outcome", "?").c_str());
  Say("  detection %.0f ms, promotion %.0f ms, kill -> first new console output %.0f ms\n", millis(report["detection_ms"]),
      millis(report["promotion_ms"]), millis(report["first_new_output_ms"]));
  Say("  drill verdict: %s\n", report.value("verdict", "?").c_str());
}

// Shows the primary's statistics every second, the console lines as they are released (and
// feeds the numbered ones to `transcript`) and, when `ticker` is set, the clients' progress.
void ShowUntil(AgentPair& pair, console::ConsoleFollower& follower, CounterTranscript& transcript,
               ClientTicker* ticker, const std::function<bool()>& done) {
  auto next_status = Clock::now();
  while (!done()) {
    if (Clock::now() >= next_status) {
      Result<nlohmann::json> status = pair.PrimaryStatus();
      if (status.ok() && status->value("state", "") != "fenced") Say("%s\n", PrimaryLine(*status).c_str());
      if (ticker) {
        const std::string clients = ticker->Line();
        if (!clients.empty()) Say("%s\n", clients.c_str());
      }
      next_status = Clock::now() + std::chrono::seconds(1);
    }
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
    if (line.ok()) {
      const std::string text = WithoutLineEnd(*line);
      if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) transcript.Observe(text);
      Say("[console  ] %s\n", text.c_str());
    }
  }
}

int RunLinuxDemo(bool separate_hosts) {
  Result<GuestAccelerator> accelerator = LinuxGuestAccelerator();
  if (!accelerator.ok()) {
    Say("This demo needs the TCG vehicle (qemu/tcg/build.sh; quickstart.sh demo builds it): %s\n",
        accelerator.status().ToString().c_str());
    return 1;
  }
  Say("Understudy failover drill: a Linux VM running Redis\n");
  Say("Accelerator: TCG with the TCG test vehicle (QEMU 7.2 + qemu/tcg/*.patch), because %s.\n"
      "(Production hosts run stock distro QEMU under KVM; the vehicle exists for tests and this demo.)\n",
      WhyTcgForLinux().c_str());
  Say("Starting etcd, ft-secondary and ft-primary for the Linux guest (Debian's kernel and redis-server,\n"
      "256 MiB, virtio-net; checkpoint every 50 ms, checkpoints over TLS 1.3)%s.\n"
      "Then %d redis-cli clients INCR their own counters over the VM's network; output commit releases a\n"
      "reply only once the checkpoint that produced it is on the secondary, so each client must see\n"
      "1, 2, 3, ... with no number lost or repeated, across the failover. The guest's console also\n"
      "counts 1, 2, 3, ... (twice a second); the observer must see each number exactly once.\n\n",
      separate_hosts ? ", each on its own host (a network namespace)" : " on loopback", kClients);
  AgentPairOptions options;
  options.separate_hosts = separate_hosts;
  options.heartbeat_budget_ms = std::nullopt;  // the product's own budget: the demo shows its failover
  Result<LinuxGuestPair> linux = StartLinuxGuestPair(options, "demo", "guest_counter=0.5");
  if (!linux.ok()) {
    Say("Could not start the protected Linux VM: %s\n", linux.status().ToString().c_str());
    return 1;
  }
  AgentPair& pair = *linux->pair;
  for (const std::string& line : linux->boot_lines) Say("[console  ] %s\n", line.c_str());
  Say("Protected after %.1f s; Redis answering after %.1f s.\n", linux->protected_s, linux->ready_s);

  ClientTicker ticker;
  RedisClientsOptions clients_options;
  clients_options.clients = kClients;
  clients_options.launcher = linux->ClientLauncher();
  clients_options.host = ClientNetwork::kGuestAddress;
  clients_options.scratch_dir = pair.directory();
  clients_options.on_outcome = [&](int client, const IncrOutcome& outcome) { ticker.Record(client, outcome); };
  std::unique_ptr<RedisIncrClients> clients = RedisIncrClients::Start(clients_options);
  CounterTranscript transcript;
  Say("Clients running. Watching for 5 seconds...\n");
  const Clock::time_point watch_until = Clock::now() + std::chrono::seconds(5);
  ShowUntil(pair, *linux->follower, transcript, &ticker, [&] { return Clock::now() >= watch_until; });

  Result<nlohmann::json> before = pair.PrimaryStatus();
  const double pause_p50 = before.ok() ? before->value("pause_ms_p50", 0.0) : 0;
  const double pause_p99 = before.ok() ? before->value("pause_ms_p99", 0.0) : 0;
  if (!StillProtected(before)) return 1;
  Say("\n*** ftctl drill kill-primary: SIGKILL of the primary's QEMU and agent after 1 s ***\n\n");
  std::future<Result<nlohmann::json>> drill = std::async(std::launch::async, [&] { return RunFtctlDrill("kill-primary", pair); });
  ShowUntil(pair, *linux->follower, transcript, &ticker,
            [&] { return drill.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  Result<nlohmann::json> report = drill.get();
  clients->Stop();
  clients->Finish();
  Say("%s\n", ticker.Line().c_str());
  if (!report.ok()) {
    Say("The drill could not run: %s\n", report.status().ToString().c_str());
    return 1;
  }
  PrintDrillReport(*report);
  Result<std::map<std::string, std::string>> values = clients->FinalValues(Deadline::AfterMillis(30000));
  IncrVerdict history = CheckIncrHistory(clients->Logs(), values.ok() ? *values : std::map<std::string, std::string>{});
  Result<nlohmann::json> promoted = pair.SecondaryStatus();

  Say("\nVerdict\n");
  Say("  promotion (the secondary's own measure): %.1f ms\n",
      promoted.ok() && (*promoted)["promotion_ms"].is_number() ? (*promoted)["promotion_ms"].get<double>() : -1.0);
  Say("  redis clients: %s\n", history.Summary().c_str());
  if (values.ok()) {
    std::string finals;
    for (const auto& [key, value] : *values) finals += " " + key + "=" + value;
    Say("  final values (GET after the failover):%s\n", finals.c_str());
  } else {
    Say("  final values: GET failed: %s\n", values.status().ToString().c_str());
  }
  Say("  console: this observer saw %llu numbered lines, up to %llu: %s\n",
      static_cast<unsigned long long>(transcript.lines_observed()), static_cast<unsigned long long>(transcript.last_number()),
      transcript.continuous() ? "continuous (no repeat, no gap)" : transcript.violation()->c_str());
  Say("  VM pause per checkpoint before the drill: p50 %.2f ms, p99 %.2f ms (TCG)\n", pause_p50, pause_p99);
  Say("  (after the failover the promoted VM runs unprotected until a new secondary joins: its replies no\n"
      "   longer wait for checkpoints)\n");
  const bool ok = values.ok() && history.consistent && history.unanswered == 0 && history.replies > 0 &&
                  transcript.continuous() && transcript.lines_observed() > 5 && report->value("continuity_held", false) &&
                  promoted.ok() && promoted->value("state", "") == "promoted";
  Say("  %s\n", ok ? "PASS: the Linux VM and its Redis clients survived the loss of the primary, no increment lost or repeated"
                   : "FAIL");
  return ok ? 0 : 1;
}

int RunCounterDemo(bool separate_hosts) {
  Result<GuestAccelerator> accelerator = ChosenAccelerator();
  if (!accelerator.ok()) {
    Say("This demo needs KVM or the TCG vehicle (qemu/tcg/build.sh): %s\n", accelerator.status().ToString().c_str());
    return 1;
  }
  AgentPairOptions options;
  options.guest = {.pages = 64};
  options.separate_hosts = separate_hosts;
  options.heartbeat_budget_ms = std::nullopt;  // the product's own budget: the demo shows its failover
  Say("Understudy failover drill, the counter guest under %s\n",
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
  Say("Protected. Watching for 6 seconds...\n");
  const Clock::time_point watch_until = Clock::now() + std::chrono::seconds(6);
  ShowUntil(**pair, follower, transcript, nullptr, [&] { return Clock::now() >= watch_until; });
  Result<nlohmann::json> before = (*pair)->PrimaryStatus();
  const double pause_p50 = before.ok() ? before->value("pause_ms_p50", 0.0) : 0;
  const double pause_p99 = before.ok() ? before->value("pause_ms_p99", 0.0) : 0;
  if (!StillProtected(before)) return 1;
  Say("\n*** ftctl drill kill-primary: SIGKILL of the primary's QEMU and agent after 1 s ***\n\n");
  std::future<Result<nlohmann::json>> drill =
      std::async(std::launch::async, [&] { return RunFtctlDrill("kill-primary", **pair); });
  ShowUntil(**pair, follower, transcript, nullptr,
            [&] { return drill.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  Result<nlohmann::json> report = drill.get();
  if (!report.ok()) {
    Say("The drill could not run: %s\n", report.status().ToString().c_str());
    return 1;
  }
  PrintDrillReport(*report);
  Say("\nVerdict\n");
  Say("  this observer saw %llu lines, up to %llu: %s\n", static_cast<unsigned long long>(transcript.lines_observed()),
      static_cast<unsigned long long>(transcript.last_number()),
      transcript.continuous() ? "continuous (no repeat, no gap)" : transcript.violation()->c_str());
  Say("  VM pause per checkpoint before the drill: p50 %.2f ms, p99 %.2f ms\n", pause_p50, pause_p99);
  const bool ok = transcript.continuous() && report->value("continuity_held", false) && transcript.lines_observed() > 10;
  Say("  %s\n", ok ? "PASS: the VM survived the loss of its primary" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string guest = "linux";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--guest=", 8) == 0) {
      guest = argv[i] + 8;
    } else {
      Say("usage: %s [--guest=linux|counter]\n", argv[0]);
      return 2;
    }
  }
  const bool separate_hosts = !NetworkLabUnavailableReason().has_value();
  if (guest == "linux") return RunLinuxDemo(separate_hosts);
  if (guest == "counter") return RunCounterDemo(separate_hosts);
  Say("unknown guest '%s': linux or counter\n", guest.c_str());
  return 2;
}
