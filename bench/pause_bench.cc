// pause_bench: how long the protected VM stands still per checkpoint — QEMU 7.2's own COLO
// (a secondary QEMU in lock-step) vs Understudy (ft-primary + ft-secondary).
//
//   bazel run //bench:pause_bench [-- --rows=64@50,1024@50,8192@50,8192@200 --checkpoints=100
//                                     --warmup=3 --transports=tcp,unix --no-results]
//
// The guest is the counter guest (`pages=N`: N pages written per pass, from 4 MiB up) with
// 96 MiB of RAM. Each row is N @ checkpoint interval (x-checkpoint-delay, ms). QEMU's interval
// timer runs from one checkpoint's start to the next, so the guest runs for interval − pause:
// when a pass over N pages takes longer than that (8192 pages here: KVM's write-protect faults
// make each first write of an epoch slow on this machine), the dirty set per checkpoint is
// smaller than N and depends on the pause itself — hence the extra 8192@200 row.
//
// Measured identically for every system, on the PRIMARY QEMU only:
//  * pause = QMP event RESUME timestamp − STOP timestamp (QEMU stamps events in µs). QEMU 7.2's
//    COLO primary emits STOP when it stops the VM for a checkpoint (vm_stop_force_state) and
//    RESUME when it restarts it (vm_start) after the peer's vmstate-loaded.
//  * after `query-migrate` reports "colo" (the precopy is done), events so far are dropped,
//    then `--warmup` checkpoints are skipped and `--checkpoints` are recorded;
//  * pages per checkpoint = what QEMU's own dirty-bitmap sync found: the primary runs with
//    `-trace enable=migration_bitmap_sync_end -msg timestamp=on`, and each sync that falls
//    inside a pause window is that checkpoint's page count (the trace's counter accumulates
//    over ~1 s periods; the bench takes differences).
//
// QEMU COLO: a secondary QEMU from the same definition with `-incoming defer`,
// `migrate-set-capabilities x-colo=on`, `migrate-incoming URI`; the primary with x-colo,
// x-checkpoint-delay and `migrate URI`. No -S, no replication drives, no colo-compare or
// filters: checkpoints are then purely periodic. URI is tcp:127.0.0.1:PORT (as deployed) and,
// to take TCP's Nagle/delayed-ACK stalls out of the comparison, unix:PATH.
//
// Understudy: the real agents as processes (tests/harness/agent_pair.h, plain TCP, no
// arbiter); the bench watches the primary QEMU through a second QMP monitor passed as the
// primary's host-local QEMU arguments.
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "bench/bench_util.h"
#include "qemu/qmp_client.h"
#include "tests/harness/test_guest.h"

namespace understudy::bench {
namespace {

using nlohmann::json;

const std::vector<std::string> kTraceArgs = {"-trace", "enable=migration_bitmap_sync_end", "-trace",
                                             "enable=migration_bitmap_sync_start", "-msg", "timestamp=on"};

struct Pause {
  double stop = 0;    // seconds since the epoch, QEMU's stamp
  double resume = 0;
  double ms() const { return (resume - stop) * 1e3; }
};

// Waits for the COLO phase, then records `count` STOP→RESUME pairs after skipping `warmup`.
Result<std::vector<Pause>> CollectPauses(qemu::QmpClient& qmp, int warmup, int count, Deadline deadline) {
  for (;;) {
    Result<json> migrate = qmp.Execute("query-migrate", Deadline::AfterMillis(5000).Min(deadline));
    if (!migrate.ok()) return migrate.status().WithContext("query-migrate");
    std::string status = migrate->value("status", "");
    if (status == "colo") break;
    if (status == "failed" || status == "cancelled" || status == "completed") {
      return Status::Broken("migration ended as '" + status + "' before COLO started: " + migrate->dump());
    }
    if (deadline.Expired()) return Status::DeadlineExceeded("COLO never started; last query-migrate: " + migrate->dump());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  (void)qmp.TakeEvents();  // the precopy's stop and anything before

  std::vector<Pause> pauses;
  double stop = 0;  // the pending STOP's timestamp; 0 when none is pending
  int skipped = 0;
  while (static_cast<int>(pauses.size()) < count) {
    if (deadline.Expired()) {
      return Status::DeadlineExceeded("only " + std::to_string(pauses.size()) + " of " + std::to_string(count) +
                                      " checkpoints before the deadline");
    }
    for (const qemu::QmpEvent& event : qmp.TakeEvents()) {
      if (event.name == "COLO_EXIT") return Status::Broken("QEMU left COLO: " + event.data.dump());
      if (event.name == "STOP") {
        stop = event.timestamp;
      } else if (event.name == "RESUME" && stop > 0) {
        if (skipped < warmup) {
          ++skipped;
        } else if (static_cast<int>(pauses.size()) < count) {
          pauses.push_back({stop, event.timestamp});
        }
        stop = 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pauses;
}

// One dirty-bitmap sync from the trace: when, how many pages it found newly dirty, and how
// long it took (from the matching migration_bitmap_sync_start; 0 when unseen).
struct Sync {
  double timestamp = 0;
  uint64_t pages = 0;
  double duration_ms = 0;
};

// Lines look like "7059@1795655280.086669:migration_bitmap_sync_end dirty_pages 38447"; the
// counter accumulates until QEMU resets it (about once a second), so a drop marks a reset.
std::vector<Sync> ParseSyncTrace(const std::string& log) {
  static const std::string kMarker = ":migration_bitmap_sync_end dirty_pages ";
  static const std::string kStart = ":migration_bitmap_sync_start";
  std::vector<Sync> syncs;
  std::istringstream lines(log);
  std::string line;
  uint64_t previous = 0;
  double started = 0;
  while (std::getline(lines, line)) {
    size_t at = line.find('@');
    if (at == std::string::npos) continue;
    size_t start = line.find(kStart);
    if (start != std::string::npos && at < start) {
      started = std::strtod(line.c_str() + at + 1, nullptr);
      continue;
    }
    size_t marker = line.find(kMarker);
    if (marker == std::string::npos || at > marker) continue;
    double timestamp = std::strtod(line.c_str() + at + 1, nullptr);
    uint64_t counter = std::strtoull(line.c_str() + marker + kMarker.size(), nullptr, 10);
    double duration_ms = started > 0 && started <= timestamp ? (timestamp - started) * 1e3 : 0;
    syncs.push_back({timestamp, counter >= previous ? counter - previous : counter, duration_ms});
    previous = counter;
    started = 0;
  }
  return syncs;
}

// Pages per pause window (syncs inside [stop, resume]); windows without a sync are skipped.
// Also the time those syncs took, per window.
std::vector<double> PagesPerCheckpoint(const std::vector<Pause>& pauses, const std::vector<Sync>& syncs,
                                       std::vector<double>* sync_ms = nullptr) {
  std::vector<double> pages;
  for (const Pause& pause : pauses) {
    uint64_t total = 0;
    double took = 0;
    bool found = false;
    for (const Sync& sync : syncs) {
      if (sync.timestamp >= pause.stop && sync.timestamp <= pause.resume) {
        total += sync.pages;
        took += sync.duration_ms;
        found = true;
      }
    }
    if (found) {
      pages.push_back(static_cast<double>(total));
      if (sync_ms) sync_ms->push_back(took);
    }
  }
  return pages;
}

struct RunResult {
  std::string system;
  std::vector<Pause> pauses;
  std::vector<double> pages;
  std::vector<double> sync_ms;  // QEMU's dirty-bitmap sync inside each pause
  std::string extra;  // system-specific cross-check, for the notes
  double load_before = 0, load_after = 0;
};

Result<uint16_t> FreeTcpPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    ::close(fd);
    return Status::FromErrno("finding a free port", error);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// Reads a guest's console on a thread until destroyed, so a full socket never stalls the guest.
class ConsoleDrain {
 public:
  explicit ConsoleDrain(testing::SerialConsole& console)
      : thread_([this, &console] {
          while (!stop_.load()) (void)console.ReadLine(Deadline::AfterMillis(100));
        }) {}
  ~ConsoleDrain() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One row of the comparison: the guest's dirty-rate knob and QEMU's checkpoint interval.
struct Row {
  uint32_t pages = 64;
  uint32_t interval_ms = 50;
  uint32_t max_pause_ms = 0;  // Understudy only: a pause target, the interval adapting below interval_ms
};

struct Settings {
  // 8192@200 repeats the highest rate with time enough for the guest to write all its pages
  // between checkpoints under every system (at 50 ms the dirty set depends on how long the
  // VM ran, i.e. on the pause being measured).
  std::vector<Row> rows = {{64, 50}, {1024, 50}, {8192, 50}, {8192, 200}};
  std::vector<std::string> transports = {"tcp", "unix"};
  int checkpoints = 100;
  int warmup = 3;
  uint32_t memory_mib = 96;
  bool write_results = true;
};

// "64@50,8192@200,1024@50/5" (or "64,1024": the interval defaults to 50 ms; "/P": Understudy
// with max_pause_ms P, the interval adapting). Exits on a malformed list.
std::vector<Row> ParseRows(const std::string& list) {
  std::vector<Row> rows;
  std::istringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    size_t slash = item.find('/');
    uint32_t max_pause = slash == std::string::npos ? 0 : ParseUintList(item.substr(slash + 1)).front();
    item = item.substr(0, slash);
    size_t at = item.find('@');
    std::vector<uint32_t> pages = ParseUintList(item.substr(0, at));
    Row row{pages.front(), 50, max_pause};
    if (at != std::string::npos) row.interval_ms = ParseUintList(item.substr(at + 1)).front();
    rows.push_back(row);
  }
  if (rows.empty()) {
    std::fprintf(stderr, "no rows in '%s'\n", list.c_str());
    std::exit(2);
  }
  return rows;
}

testing::CounterGuestOptions GuestFor(uint32_t rate, const Settings& settings) {
  // About one console line per 20k page writes: enough to see the guest boot quickly.
  // ~20 console lines/s under either accelerator (guest_pace.h; under KVM the same every= as 20000/N).
  return {.pages = rate, .lines_per_second = 20, .memory_mib = settings.memory_mib};
}

Result<RunResult> RunQemuColo(const Row& row, const std::string& transport, const Settings& settings) {
  qemu::VmDefinition definition = testing::CounterGuestDefinition(GuestFor(row.pages, settings), "");

  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::TestGuest> secondary,
                              testing::TestGuest::Start(definition, "cs", testing::StartMode::kIncomingDefer, kTraceArgs));
  ConsoleDrain secondary_console(secondary->console());
  qemu::QmpClient& secondary_qmp = secondary->process().qmp();
  std::string uri;
  if (transport == "tcp") {
    UNDERSTUDY_ASSIGN_OR_RETURN(uint16_t port, FreeTcpPort());
    uri = "tcp:127.0.0.1:" + std::to_string(port);
  } else {
    uri = "unix:" + secondary->runtime_dir() + "/colo.sock";
  }
  json colo_on = {{"capabilities", json::array({{{"capability", "x-colo"}, {"state", true}}})}};
  Result<json> reply = secondary_qmp.Execute("migrate-set-capabilities", colo_on, Deadline::AfterMillis(5000));
  if (!reply.ok()) return reply.status().WithContext("x-colo on the secondary");
  reply = secondary_qmp.Execute("migrate-incoming", {{"uri", uri}}, Deadline::AfterMillis(5000));
  if (!reply.ok()) return reply.status().WithContext("migrate-incoming on the secondary");

  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::TestGuest> primary, testing::TestGuest::Start(definition, "cp", testing::StartMode::kRun, kTraceArgs));
  Result<std::string> first = primary->console().ReadLine(Deadline::AfterMillis(60000));
  if (!first.ok()) return first.status().WithContext("waiting for the primary guest to boot");
  ConsoleDrain primary_console(primary->console());
  qemu::QmpClient& qmp = primary->process().qmp();
  json primary_caps = {{"capabilities", json::array({{{"capability", "x-colo"}, {"state", true}},
                                                      {{"capability", "return-path"}, {"state", false}}})}};
  reply = qmp.Execute("migrate-set-capabilities", primary_caps, Deadline::AfterMillis(5000));
  if (!reply.ok()) return reply.status().WithContext("x-colo on the primary");
  reply = qmp.Execute("migrate-set-parameters", {{"x-checkpoint-delay", row.interval_ms}}, Deadline::AfterMillis(5000));
  if (!reply.ok()) return reply.status().WithContext("x-checkpoint-delay");
  reply = qmp.Execute("migrate", {{"uri", uri}}, Deadline::AfterMillis(5000));
  if (!reply.ok()) return reply.status().WithContext("migrate");

  RunResult result;
  result.system = "QEMU COLO (" + transport + ")";
  Result<std::vector<Pause>> pauses = CollectPauses(qmp, settings.warmup, settings.checkpoints, Deadline::AfterMillis(120000));
  if (!pauses.ok()) {
    return pauses.status().WithContext("primary QEMU log: " + primary->process().Log() +
                                       "\nsecondary QEMU log: " + secondary->process().Log());
  }
  result.pauses = std::move(*pauses);
  result.pages = PagesPerCheckpoint(result.pauses, ParseSyncTrace(primary->process().Log()), &result.sync_ms);
  return result;
}

// The last few KiB of an agent's log, for a row that went wrong.
std::string Tail(const std::string& log) { return log.substr(log.size() > 4000 ? log.size() - 4000 : 0); }

Result<RunResult> RunUnderstudy(const Row& row, const Settings& settings) {
  // The bench watches the primary QEMU through a monitor of its own: host-local arguments of
  // the primary only, so the standby never opens it. Plain TCP and no arbiter, like QEMU COLO.
  UNDERSTUDY_ASSIGN_OR_RETURN(testing::ScratchDir monitor_dir, testing::ScratchDir::Create("ub-pb-monitor"));
  const std::string monitor_path = monitor_dir.path() + "/qmp.sock";
  testing::AgentPairOptions options;
  options.transport = "tcp";
  options.arbiter = "none";
  options.guest = GuestFor(row.pages, settings);
  options.checkpoint_interval_ms = row.interval_ms;
  options.max_pause_ms = row.max_pause_ms;
  options.primary_qemu_args = {"-qmp", "unix:" + monitor_path + ",server=on,wait=off"};
  options.primary_qemu_args.insert(options.primary_qemu_args.end(), kTraceArgs.begin(), kTraceArgs.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::AgentPair> pair, testing::AgentPair::Start(options, "pb"));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<qemu::QmpClient> monitor,
                              qemu::QmpClient::Connect(monitor_path, Deadline::AfterMillis(10000)));
  RunResult result;
  result.system = row.max_pause_ms > 0 ? Format("Understudy, max_pause %u ms", row.max_pause_ms) : "Understudy";
  Result<std::vector<Pause>> pauses =
      CollectPauses(*monitor, settings.warmup, settings.checkpoints, Deadline::AfterMillis(120000));
  if (!pauses.ok()) {
    return pauses.status().WithContext("primary log:\n" + pair->PrimaryLog() + "\nsecondary log:\n" + pair->SecondaryLog());
  }
  result.pauses = std::move(*pauses);
  result.pages = PagesPerCheckpoint(result.pauses, ParseSyncTrace(pair->PrimaryQemuLog()), &result.sync_ms);
  Result<json> status = pair->PrimaryStatus();
  if (status.ok()) {
    // The agent's own view of the same pauses (checkpoint-reply sent → vmstate-loaded sent).
    result.extra = Format("the agent's own reply→loaded timing p50 %.2f ms, p99 %.2f ms; secondary committed epoch %llu "
                          "of %llu captured",
                          status->value("pause_ms_p50", 0.0), status->value("pause_ms_p99", 0.0),
                          static_cast<unsigned long long>(status->value("committed_epoch", 0ull)),
                          static_cast<unsigned long long>(status->value("epoch", 0ull)));
    // A pair that stopped committing measured pauses without a secondary: say so, with why.
    const uint64_t committed = status->value("committed_epoch", 0ull), captured = status->value("epoch", 0ull);
    if (committed + 10 < captured) {
      result.system += " (NOT protected throughout)";
      std::fprintf(stderr, "%s: the secondary committed epoch %llu of %llu; its log (tail):\n%s\nprimary log (tail):\n%s\n",
                   result.system.c_str(), static_cast<unsigned long long>(committed),
                   static_cast<unsigned long long>(captured), Tail(pair->SecondaryLog()).c_str(),
                   Tail(pair->PrimaryLog()).c_str());
    }
    json phases = status->value("pause_phases_ms", json::object());
    auto phase = [&](const char* name) {
      json values = phases.value(name, json::object());
      return Format("%s %.2f/%.2f", name, values.value("p50", 0.0), values.value("p99", 0.0));
    };
    result.extra += "; pause phases p50/p99 ms (primary/pause_phases.h): " + phase("stop") + ", " + phase("ram") + ", " +
                    phase("device_state") + ", " + phase("agent_busy") + ", " + phase("waiting_for_qemu");
    json pacing = status->value("pacing", json::object());
    if (row.max_pause_ms > 0) {
      result.extra += Format("; adaptive interval %.1f ms (dirty %.1f pages/ms, pause model %.2f ms + %.2f us/page), "
                             "target %s",
                             pacing.value("interval_ms", 0.0), pacing.value("dirty_pages_per_ms", 0.0),
                             pacing.value("pause_fixed_ms", 0.0), pacing.value("pause_per_page_us", 0.0),
                             pacing.value("meeting_target", false) ? "met"
                                                                   : ("MISSED: " + pacing.value("why_not", std::string())).c_str());
    }
  }
  return result;
}

struct Summary {
  double median_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double interval_ms = 0;   // median STOP-to-STOP
  double running = 0;       // share of wall time the VM ran
  double pages = 0;         // median pages per checkpoint (-1: unknown)
};

Summary Summarize(const RunResult& run) {
  std::vector<double> ms, intervals;
  double paused = 0;
  for (size_t i = 0; i < run.pauses.size(); ++i) {
    ms.push_back(run.pauses[i].ms());
    if (i + 1 < run.pauses.size()) {
      intervals.push_back((run.pauses[i + 1].stop - run.pauses[i].stop) * 1e3);
      paused += run.pauses[i].ms();
    }
  }
  Summary summary;
  summary.median_ms = Median(ms);
  summary.p99_ms = Percentile(ms, 0.99);
  summary.max_ms = Percentile(ms, 1.0);
  summary.interval_ms = Median(intervals);
  double span = run.pauses.size() > 1 ? (run.pauses.back().stop - run.pauses.front().stop) * 1e3 : 0;
  summary.running = span > 0 ? 1 - paused / span : 0;
  summary.pages = run.pages.empty() ? -1 : Median(run.pages);
  return summary;
}

Settings ParseFlags(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.starts_with("--rows=")) {
      settings.rows = ParseRows(flag.substr(7));
    } else if (flag.starts_with("--checkpoints=")) {
      settings.checkpoints = std::max(1, std::stoi(flag.substr(14)));
    } else if (flag.starts_with("--warmup=")) {
      settings.warmup = std::max(0, std::stoi(flag.substr(9)));
    } else if (flag.starts_with("--transports=")) {
      settings.transports.clear();
      std::string list = flag.substr(13);
      std::istringstream parts(list);
      std::string part;
      while (std::getline(parts, part, ',')) {
        if (part != "tcp" && part != "unix") {
          std::fprintf(stderr, "unknown transport '%s' (tcp, unix)\n", part.c_str());
          std::exit(2);
        }
        settings.transports.push_back(part);
      }
    } else if (flag == "--no-results") {
      settings.write_results = false;
    } else {
      std::fprintf(stderr,
                   "unknown flag %s\nflags: --rows=64@50,1024@50,8192@50,8192@200,1024@50/5 --checkpoints=100 --warmup=3 --transports=tcp,unix "
                   "--no-results\n",
                   flag.c_str());
      std::exit(2);
    }
  }
  return settings;
}

int Run(const Settings& settings) {
  if (auto reason = testing::GuestAcceleratorUnavailableReason()) {
    std::fprintf(stderr, "pause_bench needs KVM or the TCG vehicle (qemu/tcg/build.sh): %s\n", reason->c_str());
    return 1;
  }
  Clock::time_point started = Clock::now();
  // The same bytes as a checkpoint's pages, copied by one memcpy per 4 KiB page from a
  // pre-touched pool, in the same run: the floor a copy-based pause is compared with.
  std::vector<std::byte> pool(64u << 20, std::byte{1});
  auto memcpy_ms = [&](double pages) {
    size_t count = std::min<size_t>(static_cast<size_t>(std::max(pages, 1.0)), pool.size() / 4096);
    return 1e3 * MemcpyBaselineSeconds(pool, std::vector<size_t>(count, 4096), 9);
  };
  Table table({"pages=N @ interval", "system", "ckpts", "pages/ckpt", "interval ms", "VM running", "pause p50 ms",
               "pause p99 ms", "p50 vs Understudy", "p99 vs Understudy", "bitmap sync p50 ms", "memcpy of the pages ms",
               "pause p50 / memcpy", "target", "load avg"},
              2);
  std::string notes;
  bool all_ok = true;
  for (const Row& row : settings.rows) {
    const std::string label = Format("%u @ %u ms", row.pages, row.interval_ms);
    std::vector<RunResult> runs;
    auto attempt = [&](const char* what, auto run_it) {
      double load_before = LoadAverage1();
      Result<RunResult> run = run_it();
      if (!run.ok()) {
        std::fprintf(stderr, "pages=%s %s failed: %s\n", label.c_str(), what, run.status().ToString().c_str());
        notes += Format("* pages=%s %s: FAILED (%s)\n", label.c_str(), what, run.status().message().substr(0, 300).c_str());
        all_ok = false;
        return;
      }
      run->load_before = load_before;
      run->load_after = LoadAverage1();
      Summary s = Summarize(*run);
      std::printf("  %-17s pause p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  pages/ckpt %6.0f  interval %6.1f ms\n",
                  run->system.c_str(), s.median_ms, s.p99_ms, s.max_ms, s.pages, s.interval_ms);
      std::fflush(stdout);
      if (!run->extra.empty()) notes += Format("* pages=%s %s: %s\n", label.c_str(), run->system.c_str(), run->extra.c_str());
      runs.push_back(std::move(*run));
    };
    std::printf("pages=%s: Understudy ...\n", label.c_str());
    std::fflush(stdout);
    attempt("Understudy", [&] { return RunUnderstudy(row, settings); });
    // Adaptive rows are Understudy's alone: QEMU COLO has no pause target.
    for (const std::string& transport : row.max_pause_ms > 0 ? std::vector<std::string>{} : settings.transports) {
      std::printf("pages=%s: QEMU COLO over %s ...\n", label.c_str(), transport.c_str());
      std::fflush(stdout);
      attempt(("QEMU COLO " + transport).c_str(), [&] { return RunQemuColo(row, transport, settings); });
    }
    std::optional<Summary> understudy;
    for (const RunResult& run : runs) {
      if (run.system.starts_with("Understudy")) understudy = Summarize(run);
    }
    for (const RunResult& run : runs) {
      Summary s = Summarize(run);
      bool reference = run.system.starts_with("Understudy");
      auto ratio = [&](double value, double base) {
        return reference || !understudy || base <= 0 ? std::string("") : Format("%.1fx", value / base);
      };
      double copy_ms = s.pages > 0 ? memcpy_ms(s.pages) : 0;
      std::string target = "";
      if (row.max_pause_ms > 0 && reference) {
        target = s.p99_ms <= row.max_pause_ms ? Format("p99 within %u ms", row.max_pause_ms)
                                              : Format("MISSED %u ms", row.max_pause_ms);
      }
      table.AddRow({label, run.system, std::to_string(run.pauses.size()), s.pages < 0 ? "?" : Format("%.0f", s.pages),
                    Format("%.1f", s.interval_ms), Format("%.0f%%", 100 * s.running), Format("%.2f", s.median_ms),
                    Format("%.2f", s.p99_ms), understudy ? ratio(s.median_ms, understudy->median_ms) : "",
                    understudy ? ratio(s.p99_ms, understudy->p99_ms) : "",
                    run.sync_ms.empty() ? "?" : Format("%.2f", Median(run.sync_ms)),
                    copy_ms > 0 ? Format("%.2f", copy_ms) : "?", copy_ms > 0 ? Format("%.1fx", s.median_ms / copy_ms) : "?",
                    target, Format("%.1f-%.1f", run.load_before, run.load_after)});
    }
  }
  std::string command = "bazel run //bench:pause_bench";
  std::string body =
      "Run " + UtcNow() + " on " + MachineDescription() + ", built " + BuildMode() + ". Command: `" + command + "`" +
      Format(" (counter guest `pages=N`, %u MiB; N @ checkpoint interval (x-checkpoint-delay); %d checkpoints per "
             "row after %d warm-up; %.0f s in all).\n\n",
             settings.memory_mib, settings.checkpoints, settings.warmup, SecondsSince(started)) +
      "Pause = RESUME − STOP on the primary QEMU (QMP event timestamps). pages/ckpt = median pages QEMU's dirty-bitmap "
      "sync found per checkpoint (trace `migration_bitmap_sync_end`). interval = median STOP-to-STOP. VM running = "
      "share of wall time between checkpoints the guest was not paused. \"vs Understudy\" = QEMU COLO's pause / "
      "Understudy's (higher = Understudy better). bitmap sync = QEMU's migration_bitmap_sync_start→end inside the pause "
      "(trace stamps). memcpy of the pages = one memcpy per 4 KiB page of pages/ckpt pages from a pre-touched 64 MiB "
      "pool, median of 9, same run. \"/P\" rows: Understudy with max_pause_ms P (the interval adapts below the row's); "
      "target = whether its pause p99 stayed within P. load avg = 1-minute load before-after the run.\n\n" +
      table.Markdown() + "\n" + notes;
  PublishResults("pause_bench", body, settings.write_results);
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace understudy::bench

int main(int argc, char** argv) { return understudy::bench::Run(understudy::bench::ParseFlags(argc, argv)); }
