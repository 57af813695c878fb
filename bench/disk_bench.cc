// disk_bench: the disk guest's write throughput and per-record latency, unprotected and
// protected, in one run, as ratios against plain QEMU on a raw file.
//
//   bazel run //bench:disk_bench [-- --seconds=15 --warmup=2 --delay=1000 --intervals=50,20
//                                    --transport=tls --disk-mib=16 --no-results]
//
// The guest is tests/guests/disk_writer.c: per record it verifies two sectors (ATA PIO reads),
// writes one 512-byte sector (ATA PIO), flushes, prints the record number on COM1 and spins
// `delay` iterations. One record = 512 bytes of payload. Configurations, one after another:
//  (a) plain QEMU: `-drive file=IMAGE,format=raw,if=ide` (cache=writeback: a flush is an
//      fdatasync of the image) — the denominator of every ratio;
//  (b) the same guest on disk::DiskServer over NBD, served from this process, no agents and no
//      checkpoints: what the agent's server costs in the I/O path (it records every write and
//      is sealed every 50 ms, as a primary's is once per checkpoint, and fdatasyncs on flush);
//  (c, d, ...) protected: testing::AgentPair with `disk`, one per --intervals value.
//
// What is measured, identically for every configuration: the guest's own progress, from QEMU.
// Each QEMU that runs the guest (the primary's, when protected) is started with
// `-trace enable=ide_exec_cmd,ide_sector_write,serial_write -msg timestamp=on`: every ATA
// command, every completed sector transfer and every byte the guest writes to COM1 gets a
// wall-clock stamp (µs) in QEMU's log. From it:
//  * throughput = sector writes stamped inside the --seconds window / window (records/s; ×512
//    for KiB/s). Cross-checked against a counter of the disk itself over the same window:
//    query-blockstats wr_bytes (a), DiskServer::bytes_written (b), the primary agent's status
//    disk.bytes_written (protected);
//  * record cycle = time between the sector writes of consecutive records: what one append
//    costs the guest, checkpoint pauses included (the vCPU is stopped, so the next stamp is
//    late). Its median and p99 are the per-record latency the guest sees; cycles over 100 ms
//    are counted as stalls (how a throughput loss splits into "every record a bit slower" and
//    "the guest stood still");
//  * phases of a cycle (medians): verify reads, the write's PIO transfer, the write's
//    completion, the flush, printing the number, and the spin;
//  * write→observer = when the observer (console follower for protected runs, the serial
//    socket otherwise) received "k" − when sector k was written. For protected runs this
//    includes output commit: the console is released only once the checkpoint holding the
//    record is acknowledged. The observer's gaps between consecutive lines are reported too,
//    to show why they are no latency measure under output commit (lines come in bursts).
//
// The guest's `delay` matters: on this machine's paravirtual KVM one spin iteration takes
// ~5 µs, so the 20000 AgentPair gives its disk guest by default would be ~100 ms of spinning
// per ~11 ms of I/O. Every configuration runs --delay instead, and the phase table shows what
// the spin costs.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "common/deadline.h"
#include "common/result.h"
#include "console/console_follower.h"
#include "disk/disk_server.h"
#include "qemu/qmp_client.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/test_guest.h"

namespace understudy::bench {
namespace {

using nlohmann::json;

constexpr uint64_t kRecordBytes = 512;
// A record cycle this long is a stall (over 5x plain QEMU's usual cycle here), not a slow record.
constexpr double kStallMs = 100;

const std::vector<std::string> kTraceArgs = {"-trace", "enable=ide_exec_cmd",   "-trace", "enable=ide_sector_write",
                                             "-trace", "enable=serial_write", "-msg",   "timestamp=on"};

// Seconds since the epoch: the clock QEMU stamps its trace lines with (gettimeofday).
double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Settings {
  double seconds = 15;
  double warmup = 2;
  uint32_t delay = 1000;
  std::vector<uint32_t> intervals_ms = {50, 20};
  std::string transport = "tls";
  uint64_t disk_bytes = 16ull << 20;
  bool write_results = true;
};

// ---- The guest's timeline, from QEMU's trace ----

// When each step of one record happened (seconds since the epoch; NAN when not seen).
struct RecordTimes {
  double read = NAN;           // first verify read command (ATA 0x20)
  double write_command = NAN;  // ATA 0x30
  double sector_write = NAN;   // the sector's 512 bytes transferred (ide_sector_write)
  double flush = NAN;          // ATA 0xE7
  double first_char = NAN;     // first byte of the number on COM1
  double newline = NAN;        // its newline
};

// Lines look like "26865@1795674492.508021:ide_exec_cmd IDE exec cmd: bus 0x..; state 0x..; cmd 0x30",
// "…:ide_sector_write sector=214 nsectors=1", "…:serial_write write addr 0x00 val 0x0a".
// Returns record number → times, for every record whose newline was seen.
std::map<uint64_t, RecordTimes> ParseGuestTrace(const std::string& log) {
  std::map<uint64_t, RecordTimes> records;
  RecordTimes pending;
  uint64_t pending_sector = 0;  // 0: no sector written yet for this record (records start at 1)
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    size_t at = line.find('@');
    size_t colon = at == std::string::npos ? std::string::npos : line.find(':', at);
    if (colon == std::string::npos) continue;
    double time = std::strtod(line.c_str() + at + 1, nullptr);
    size_t space = line.find(' ', colon);
    std::string event = line.substr(colon + 1, space == std::string::npos ? std::string::npos : space - colon - 1);
    if (event == "ide_exec_cmd") {
      size_t cmd = line.rfind("cmd 0x");
      if (cmd == std::string::npos) continue;
      unsigned long command = std::strtoul(line.c_str() + cmd + 6, nullptr, 16);
      if (command == 0x20 && std::isnan(pending.read)) pending.read = time;
      if (command == 0x30) pending.write_command = time;
      if (command == 0xE7) pending.flush = time;
    } else if (event == "ide_sector_write") {
      size_t sector = line.find("sector=");
      if (sector == std::string::npos) continue;
      pending_sector = std::strtoull(line.c_str() + sector + 7, nullptr, 10);
      if (pending_sector == 0) continue;
      pending.sector_write = time;
    } else if (event == "serial_write") {
      // Only data-register writes after a record's sector write: the record's number.
      if (line.find("addr 0x00 ") == std::string::npos || pending_sector == 0) continue;
      if (std::isnan(pending.first_char)) pending.first_char = time;
      if (line.find("val 0x0a") != std::string::npos) {
        pending.newline = time;
        records[pending_sector] = pending;
        pending = {};
        pending_sector = 0;
      }
    }
  }
  return records;
}

// ---- The observer ----

struct Arrival {
  uint64_t number = 0;
  double time = 0;  // seconds since the epoch
};

// Reads console lines on a thread and stamps each with its arrival time, until stopped.
// Thread safety: all methods from any thread; `read` is called on the recorder's thread only.
class ConsoleRecorder {
 public:
  using ReadLine = std::function<Result<std::string>(Deadline)>;
  explicit ConsoleRecorder(ReadLine read) : read_(std::move(read)), thread_([this] { Loop(); }) {}
  ~ConsoleRecorder() { Stop(); }

  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  // Waits for the guest's first record on the console.
  Status WaitForFirstRecord(Deadline deadline) const {
    while (!deadline.Expired()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!arrivals_.empty()) return Status::Ok();
        if (!problem_.empty()) return Status::Broken(problem_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Status::DeadlineExceeded("no record on the console");
  }
  std::vector<Arrival> arrivals() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return arrivals_;
  }
  // The first line that was not the next record number ("VERIFY FAILED: ...", a gap), or "".
  std::string problem() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return problem_;
  }

 private:
  void Loop() {
    while (!stop_.load()) {
      Result<std::string> line = read_(Deadline::AfterMillis(100));
      if (!line.ok()) continue;
      double now = WallSeconds();
      char* end = nullptr;
      unsigned long long number = std::strtoull(line->c_str(), &end, 10);
      std::lock_guard<std::mutex> lock(mutex_);
      bool next = !line->empty() && *end == '\0' && (arrivals_.empty() || number == arrivals_.back().number + 1);
      if (!next) {
        if (problem_.empty()) problem_ = "console line '" + line->substr(0, 200) + "' is not the next record number";
        continue;
      }
      arrivals_.push_back({number, now});
    }
  }

  ReadLine read_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Arrival> arrivals_;  // guarded by mutex_
  std::string problem_;            // guarded by mutex_
  std::thread thread_;             // last: starts once everything above exists
};

// ---- One configuration ----

struct RunResult {
  std::string name;
  double window_start = 0, window_end = 0;  // seconds since the epoch
  std::map<uint64_t, RecordTimes> records;
  std::vector<Arrival> arrivals;
  double device_bytes = -1;  // written to the disk inside the window, by the disk's own counter
  std::string load_average;  // /proc/loadavg's 1-minute figure when the window opened
  std::string notes;
};

// The 1-minute load average: other work on this shared machine shows up in every column.
std::string LoadAverage() {
  double one_minute = -1;
  if (FILE* file = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(file, "%lf", &one_minute) != 1) one_minute = -1;
    std::fclose(file);
  }
  return one_minute < 0 ? "?" : Format("%.2f", one_minute);
}

// Steady state: waits for the first record, skips `warmup`, then measures for `seconds`,
// sampling the disk's own byte counter at both ends; keeps observing one more second so the
// window's last records reach a protected VM's observer too.
Status MeasureWindow(const ConsoleRecorder& recorder, const std::function<Result<uint64_t>()>& device_bytes,
                     const Settings& settings, RunResult& result) {
  Status booted = recorder.WaitForFirstRecord(Deadline::AfterMillis(90000));
  if (!booted.ok()) return booted.WithContext("waiting for the guest's first record");
  std::this_thread::sleep_for(std::chrono::duration<double>(settings.warmup));
  Result<uint64_t> bytes_before = device_bytes();
  result.load_average = LoadAverage();
  result.window_start = WallSeconds();
  std::this_thread::sleep_for(std::chrono::duration<double>(settings.seconds));
  result.window_end = WallSeconds();
  Result<uint64_t> bytes_after = device_bytes();
  if (bytes_before.ok() && bytes_after.ok()) result.device_bytes = static_cast<double>(*bytes_after - *bytes_before);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  if (std::string problem = recorder.problem(); !problem.empty()) return Status::Broken(problem);
  return Status::Ok();
}

Result<std::string> CreateImage(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("creating " + path, errno);
  int sized = ::ftruncate(fd, static_cast<off_t>(bytes));
  int error = errno;
  ::close(fd);
  if (sized != 0) return Status::FromErrno("sizing " + path, error);
  return path;
}

// query-blockstats: bytes the guest's disk has written, over every block device.
Result<uint64_t> QmpBytesWritten(qemu::QmpClient& qmp) {
  UNDERSTUDY_ASSIGN_OR_RETURN(json stats, qmp.Execute("query-blockstats", Deadline::AfterMillis(5000)));
  uint64_t bytes = 0;
  for (const json& device : stats) bytes += device.value("stats", json::object()).value("wr_bytes", uint64_t{0});
  return bytes;
}

Result<RunResult> RunPlainQemu(const Settings& settings) {
  UNDERSTUDY_ASSIGN_OR_RETURN(testing::ScratchDir dir, testing::ScratchDir::Create("ub-db-plain"));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string image, CreateImage(dir.path() + "/disk.raw", settings.disk_bytes));
  qemu::VmDefinition definition = testing::DiskGuestDefinition(settings.delay);
  std::vector<std::string> host_args = {"-drive", "file=" + image + ",format=raw,if=ide"};
  host_args.insert(host_args.end(), kTraceArgs.begin(), kTraceArgs.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::TestGuest> guest,
                              testing::TestGuest::Start(definition, "db-plain", testing::StartMode::kRun, host_args));
  RunResult result;
  result.name = "(a) plain QEMU, raw file";
  ConsoleRecorder recorder([&guest](Deadline deadline) { return guest->console().ReadLine(deadline); });
  Status measured = MeasureWindow(
      recorder, [&guest] { return QmpBytesWritten(guest->process().qmp()); }, settings, result);
  recorder.Stop();
  if (!measured.ok()) return measured.WithContext("QEMU log: " + guest->process().Log().substr(0, 2000));
  result.records = ParseGuestTrace(guest->process().Log());
  result.arrivals = recorder.arrivals();
  return result;
}

// Seals a DiskServer's generation every `period`, as a primary does once per checkpoint, and
// drops it (nobody to ship it to).
class PeriodicSealer {
 public:
  PeriodicSealer(disk::DiskServer& server, std::chrono::milliseconds period)
      : thread_([this, &server, period] {
          while (!stop_.load()) {
            std::this_thread::sleep_for(period);
            (void)server.Seal();
          }
        }) {}
  ~PeriodicSealer() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Result<RunResult> RunNbdServer(const Settings& settings) {
  UNDERSTUDY_ASSIGN_OR_RETURN(testing::ScratchDir dir, testing::ScratchDir::Create("ub-db-nbd"));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::string image, CreateImage(dir.path() + "/disk.raw", settings.disk_bytes));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<disk::DiskServer> server,
                              disk::DiskServer::Start(image, dir.path() + "/disk.sock"));
  PeriodicSealer sealer(*server, std::chrono::milliseconds(50));
  qemu::VmDefinition definition = testing::DiskGuestDefinition(settings.delay);
  definition.disk.size_bytes = server->size_bytes();
  definition.disk.nbd_socket = server->socket_path();
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::TestGuest> guest,
                              testing::TestGuest::Start(definition, "db-nbd", testing::StartMode::kRun, kTraceArgs));
  RunResult result;
  result.name = "(b) NBD DiskServer, unprotected";
  ConsoleRecorder recorder([&guest](Deadline deadline) { return guest->console().ReadLine(deadline); });
  Status measured = MeasureWindow(
      recorder, [&server]() -> Result<uint64_t> { return server->bytes_written(); }, settings, result);
  recorder.Stop();
  if (!measured.ok()) return measured.WithContext("QEMU log: " + guest->process().Log().substr(0, 2000));
  result.records = ParseGuestTrace(guest->process().Log());
  result.arrivals = recorder.arrivals();
  result.notes = Format("%llu NBD requests in all", static_cast<unsigned long long>(server->requests()));
  return result;
}

Result<RunResult> RunProtected(uint32_t interval_ms, char letter, const Settings& settings) {
  testing::AgentPairOptions options;
  options.transport = settings.transport;
  options.arbiter = "none";  // etcd is not on the I/O or checkpoint path; one process fewer on 2 cores
  options.disk = true;
  options.disk_bytes = settings.disk_bytes;
  options.checkpoint_interval_ms = interval_ms;
  options.disk_guest_delay = settings.delay;
  options.primary_qemu_args.assign(kTraceArgs.begin(), kTraceArgs.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::AgentPair> pair,
                              testing::AgentPair::Start(options, "db" + std::to_string(interval_ms)));
  RunResult result;
  result.name = Format("(%c) protected, %u ms checkpoints", letter, interval_ms);
  auto follower = std::make_shared<console::ConsoleFollower>(pair->Follower());
  ConsoleRecorder recorder([follower](Deadline deadline) { return follower->ReadLine(deadline); });
  // The primary's status at both ends of the window: its disk's byte counter, its checkpoints.
  std::vector<json> samples;
  auto sample = [&pair, &samples]() -> Result<uint64_t> {
    UNDERSTUDY_ASSIGN_OR_RETURN(json status, pair->PrimaryStatus());
    samples.push_back(status);
    if (!status.contains("disk") || !status["disk"].is_object()) return Status::NotFound("no disk in the primary's status");
    return status["disk"].value("bytes_written", uint64_t{0});
  };
  Status measured = MeasureWindow(recorder, sample, settings, result);
  recorder.Stop();
  if (!measured.ok()) {
    return measured.WithContext("primary log:\n" + pair->PrimaryLog().substr(0, 3000) + "\nsecondary log:\n" +
                                pair->SecondaryLog().substr(0, 3000));
  }
  if (samples.size() == 2) {
    const json& before = samples[0];
    const json& after = samples[1];
    // A pair that stopped protecting during the window measured something else: say so.
    const std::string state_before = before.value("state", "?"), state_after = after.value("state", "?");
    if (state_before != "protected" || state_after != "protected") {
      result.name += " (NOT protected throughout)";
      result.notes = Format("state %s at the window's start, %s at its end (last error: %s); ", state_before.c_str(),
                            state_after.c_str(), after.value("last_error", "").substr(0, 200).c_str());
      // Why the pair fell apart is in the agents' own words, not in the table: print them.
      std::fprintf(stderr, "%s: the pair stopped protecting; secondary log (tail):\n%s\n", result.name.c_str(),
                   pair->SecondaryLog().substr(pair->SecondaryLog().size() > 4000 ? pair->SecondaryLog().size() - 4000 : 0).c_str());
    }
    double checkpoints = after.value("checkpoints", 0.0) - before.value("checkpoints", 0.0);
    result.notes += Format(
        "%.1f checkpoints/s in the window; the agent's pause p50 %.2f ms, p99 %.2f ms and stop→ack p50 %.1f ms, p99 "
        "%.1f ms (its last <=1000 checkpoints); committed epoch %llu of %llu",
        checkpoints / (result.window_end - result.window_start), after.value("pause_ms_p50", 0.0),
        after.value("pause_ms_p99", 0.0), after.value("commit_ms_p50", 0.0), after.value("commit_ms_p99", 0.0),
        static_cast<unsigned long long>(after.value("committed_epoch", 0ull)),
        static_cast<unsigned long long>(after.value("epoch", 0ull)));
  }
  result.records = ParseGuestTrace(pair->PrimaryQemuLog());
  result.arrivals = recorder.arrivals();
  return result;
}

// ---- Summaries ----

struct Summary {
  size_t records = 0;      // sector writes inside the window
  double records_per_second = 0;
  double device_records_per_second = -1;
  std::vector<double> per_second;     // records in each whole second of the window
  std::vector<double> cycle_ms;       // consecutive sector writes, first one in the window
  std::vector<double> visible_ms;     // sector write → observer
  std::vector<double> console_gap_ms; // between observer arrivals inside the window
  size_t unseen = 0;                  // records of the window the observer never received
  size_t stalls = 0;                  // cycles longer than kStallMs, and their total length
  double stalled_seconds = 0;
  double window_seconds = 0;
  // Median phase durations (ms): verify, PIO transfer, write completion, flush, print, spin.
  std::vector<double> phase_ms;
};

Summary Summarize(const RunResult& run) {
  Summary summary;
  const double window = run.window_end - run.window_start;
  std::vector<std::vector<double>> phases(6);
  std::vector<double> buckets(static_cast<size_t>(std::max(0.0, std::floor(window))), 0);
  std::map<uint64_t, double> arrival_of;
  for (const Arrival& arrival : run.arrivals) arrival_of[arrival.number] = arrival.time;
  for (const auto& [number, times] : run.records) {
    if (times.sector_write < run.window_start || times.sector_write >= run.window_end) continue;
    ++summary.records;
    size_t bucket = static_cast<size_t>(times.sector_write - run.window_start);
    if (bucket < buckets.size()) buckets[bucket] += 1;
    auto next = run.records.find(number + 1);
    if (next != run.records.end()) {
      const double cycle_ms = (next->second.sector_write - times.sector_write) * 1e3;
      summary.cycle_ms.push_back(cycle_ms);
      if (cycle_ms > kStallMs) {
        ++summary.stalls;
        summary.stalled_seconds += cycle_ms / 1e3;
      }
      const double steps[] = {times.read,        times.write_command, times.sector_write, times.flush,
                              times.first_char,  times.newline,       next->second.read};
      for (size_t phase = 0; phase < phases.size(); ++phase) {
        if (!std::isnan(steps[phase]) && !std::isnan(steps[phase + 1])) {
          phases[phase].push_back((steps[phase + 1] - steps[phase]) * 1e3);
        }
      }
    }
    auto seen = arrival_of.find(number);
    if (seen == arrival_of.end()) {
      ++summary.unseen;
    } else {
      summary.visible_ms.push_back((seen->second - times.sector_write) * 1e3);
    }
  }
  summary.per_second = buckets;
  summary.window_seconds = window;
  summary.records_per_second = window > 0 ? static_cast<double>(summary.records) / window : 0;
  if (run.device_bytes >= 0 && window > 0) summary.device_records_per_second = run.device_bytes / kRecordBytes / window;
  double previous = NAN;
  for (const Arrival& arrival : run.arrivals) {
    if (arrival.time < run.window_start || arrival.time >= run.window_end) continue;
    if (!std::isnan(previous)) summary.console_gap_ms.push_back((arrival.time - previous) * 1e3);
    previous = arrival.time;
  }
  for (const std::vector<double>& phase : phases) summary.phase_ms.push_back(Median(phase));
  return summary;
}

std::string Ms(double value) { return Format(value < 10 ? "%.2f" : "%.1f", value); }
std::string Ratio(double value, double base) { return base > 0 ? Format("%.2fx", value / base) : ""; }

Settings ParseFlags(int argc, char** argv) {
  Settings settings;
  const char* usage =
      "flags: --seconds=15 --warmup=2 --delay=1000 --intervals=50,20 --transport=tls|tcp|zmq+curve --disk-mib=16 "
      "--no-results\n";
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.starts_with("--seconds=")) {
      settings.seconds = std::max(1.0, std::atof(flag.c_str() + 10));
    } else if (flag.starts_with("--warmup=")) {
      settings.warmup = std::max(0.0, std::atof(flag.c_str() + 9));
    } else if (flag.starts_with("--delay=")) {
      settings.delay = static_cast<uint32_t>(std::strtoul(flag.c_str() + 8, nullptr, 10));
    } else if (flag.starts_with("--intervals=")) {
      settings.intervals_ms = flag.size() > 12 ? ParseUintList(flag.substr(12)) : std::vector<uint32_t>{};
    } else if (flag.starts_with("--transport=")) {
      settings.transport = flag.substr(12);
    } else if (flag.starts_with("--disk-mib=")) {
      settings.disk_bytes = std::max(1ul, std::strtoul(flag.c_str() + 11, nullptr, 10)) << 20;
    } else if (flag == "--no-results") {
      settings.write_results = false;
    } else {
      std::fprintf(stderr, "unknown flag %s\n%s", flag.c_str(), usage);
      std::exit(2);
    }
  }
  return settings;
}

int Run(const Settings& settings) {
  if (auto reason = testing::GuestAcceleratorUnavailableReason()) {
    std::fprintf(stderr, "disk_bench needs KVM or the TCG vehicle (qemu/tcg/build.sh): %s\n", reason->c_str());
    return 1;
  }
  Clock::time_point started = Clock::now();
  std::vector<std::pair<std::string, std::function<Result<RunResult>()>>> configurations;
  configurations.push_back({"(a) plain QEMU, raw file", [&] { return RunPlainQemu(settings); }});
  configurations.push_back({"(b) NBD DiskServer, unprotected", [&] { return RunNbdServer(settings); }});
  char letter = 'c';
  for (uint32_t interval : settings.intervals_ms) {
    configurations.push_back({Format("(%c) protected, %u ms checkpoints", letter, interval),
                              [&settings, interval, letter] { return RunProtected(interval, letter, settings); }});
    ++letter;
  }

  std::vector<std::pair<RunResult, Summary>> runs;
  std::string notes;
  bool all_ok = true;
  for (auto& [name, run] : configurations) {
    std::printf("%s ...\n", name.c_str());
    std::fflush(stdout);
    Result<RunResult> result = run();
    if (!result.ok()) {
      std::fprintf(stderr, "%s failed: %s\n", name.c_str(), result.status().ToString().c_str());
      notes += Format("* %s: FAILED (%s)\n", name.c_str(), result.status().message().substr(0, 300).c_str());
      all_ok = false;
      continue;
    }
    Summary summary = Summarize(*result);
    std::printf("  %zu records in %.1f s: %.1f records/s (disk counter %.1f); cycle p50 %.2f ms p99 %.2f ms; "
                "write->observer p50 %.2f ms p99 %.2f ms\n",
                summary.records, result->window_end - result->window_start, summary.records_per_second,
                summary.device_records_per_second, Median(summary.cycle_ms), Percentile(summary.cycle_ms, 0.99),
                Median(summary.visible_ms), Percentile(summary.visible_ms, 0.99));
    std::fflush(stdout);
    if (summary.records == 0) {
      notes += Format("* %s: no sector write in the trace inside the window (is QEMU's log tracing?)\n", name.c_str());
      all_ok = false;
    }
    if (summary.unseen > 0) {
      notes += Format("* %s: %zu records of the window never reached the observer\n", name.c_str(), summary.unseen);
    }
    if (!result->notes.empty()) notes += "* " + name + ": " + result->notes + "\n";
    runs.emplace_back(std::move(*result), std::move(summary));
  }

  const Summary* base = nullptr;
  for (const auto& [run, summary] : runs) {
    if (run.name.starts_with("(a)")) base = &summary;
  }
  Table table({"configuration", "records", "records/s", "KiB/s", "throughput vs (a)", "records/s per 1 s min/p50/max",
               "disk counter KiB/s",
               "cycle p50 ms", "cycle p99 ms", "cycle p50 vs (a)", "cycles > 100 ms (share of window)", "write→observer p50 ms", "write→observer p99 ms",
               "console gap p50 ms", "console gap p99 ms"});
  Table phases({"configuration", "verify reads", "write PIO", "write completes", "flush", "print", "spin", "cycle p50",
                "spin vs (a)", "load avg"});
  for (const auto& [run, s] : runs) {
    double cycle_p50 = Median(s.cycle_ms);
    table.AddRow({run.name, std::to_string(s.records), Format("%.1f", s.records_per_second),
                  Format("%.1f", s.records_per_second * kRecordBytes / 1024),
                  base ? Ratio(s.records_per_second, base->records_per_second) : "",
                  Format("%.0f / %.0f / %.0f", Percentile(s.per_second, 0), Median(s.per_second), Percentile(s.per_second, 1)),
                  s.device_records_per_second < 0 ? "?" : Format("%.1f", s.device_records_per_second * kRecordBytes / 1024),
                  Ms(cycle_p50), Ms(Percentile(s.cycle_ms, 0.99)), base ? Ratio(cycle_p50, Median(base->cycle_ms)) : "",
                  Format("%zu (%.0f%%)", s.stalls, 100 * s.stalled_seconds / std::max(1e-9, s.window_seconds)),
                  Ms(Median(s.visible_ms)), Ms(Percentile(s.visible_ms, 0.99)), Ms(Median(s.console_gap_ms)),
                  Ms(Percentile(s.console_gap_ms, 0.99))});
    std::vector<std::string> row = {run.name};
    for (double phase : s.phase_ms) row.push_back(Ms(phase));
    row.push_back(Ms(cycle_p50));
    row.push_back(base && base->phase_ms.size() == 6 ? Ratio(s.phase_ms[5], base->phase_ms[5]) : "");
    row.push_back(run.load_average);
    phases.AddRow(std::move(row));
  }

  std::string command = "bazel run //bench:disk_bench";
  std::string body =
      "Run " + UtcNow() + " on " + MachineDescription() + ", built " + BuildMode() + ". Command: `" + command + "`" +
      Format(" (disk guest `delay=%u`, %llu MiB disk; %.0f s measured per configuration after the first record + %.0f s "
             "warm-up; protected: transport %s, no arbiter; %.0f s in all).\n\n",
             settings.delay, static_cast<unsigned long long>(settings.disk_bytes >> 20), settings.seconds,
             settings.warmup, settings.transport.c_str(), SecondsSince(started)) +
      "One record = one 512-byte sector written with ATA PIO and flushed, then its number printed on COM1. Every "
      "column but the observer's comes from the QEMU that runs the guest (`-trace "
      "ide_exec_cmd,ide_sector_write,serial_write`, wall-clock µs stamps). records/s = sector writes inside the "
      "window / window; \"disk counter\" = the same from the disk's own byte counter (query-blockstats, "
      "DiskServer, the primary's status) as a cross-check. cycle = time between consecutive records' sector "
      "writes, checkpoint pauses included: the per-record latency the guest sees; cycles over 100 ms are counted as "
      "stalls, with their total as a share of the window. write→observer = sector write "
      "→ the number reaching the observer (the serial socket; for protected runs the console follower, after "
      "output commit). console gap = between consecutive lines at the observer: bursty under output commit, so "
      "not a per-record latency. Ratios: vs (a), higher throughput / lower cycle is better.\n\n" +
      table.Markdown() +
      "\nWhere a record's time goes (medians, ms, from the same trace): verify reads = first read command → write "
      "command (two 512-byte PIO reads); write PIO = write command → sector transferred (256 `outw` exits); write "
      "completes = → flush command (the backend write); flush = → first byte on COM1; print = the number and newline "
      "(a few `outb` exits); spin = newline → next read command (`delay` iterations). The spin is the same guest "
      "work in every configuration and touches no device, so \"spin vs (a)\" is a control: in (b) above 1.00x means "
      "the vCPU got less of the 2 cores (other work on the machine), which slows every phase alike; in protected "
      "rows it also holds the checkpoint pauses that fall inside it, the agents' CPU use and dirty-page tracking. "
      "load avg = 1-minute load when the window opened.\n\n" +
      phases.Markdown() + "\n" + notes;
  PublishResults("disk_bench", body, settings.write_results);
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace understudy::bench

int main(int argc, char** argv) { return understudy::bench::Run(understudy::bench::ParseFlags(argc, argv)); }
