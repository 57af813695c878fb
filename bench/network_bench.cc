// Network request latency, protected vs unprotected, in one run.
//
// The network guest (tests/guests/net_service.c) answers UDP requests; clients run in the
// client namespace of a ClientNetwork, as in network_failover_test. Configurations:
//   unprotected   the same guest, its NIC on the same tap through the same frame relay, but
//                 frames go out at once (no agent, no checkpoints): the baseline
//   protected     an AgentPair at 50 ms and at 20 ms checkpoint intervals: each reply waits for
//                 the checkpoint of the epoch that produced it to be acknowledged; each with
//                 output-triggered checkpoints off (only the periodic ones) and on (held
//                 output starts a checkpoint at once, at most one per min spacing: 5 ms, the
//                 default, and 2 ms)
// Latency of request r is the time from the client's first send of r (right after r-1's
// answer) to r's answer, retransmissions included; measured by the client itself (µs stamps),
// with one request outstanding. Also the aggregate rate of 4 concurrent clients, and for the
// protected rows where a reply's time goes, from the primary's status: output held → VM
// stopped for its checkpoint (the pacer's wait), the pause, VM stopped → ack (commit).
//   bazel run //bench:network_bench [-- --requests=200 --no-results]
#include <fstream>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "common/child_process.h"
#include "network/frame_relay.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/client_network.h"
#include "tests/harness/test_guest.h"

namespace understudy::bench {
namespace {

using testing::ClientNetwork;

struct Options {
  uint32_t requests = 200;
  bool write_results = true;
  bool quick = false;  // only the unprotected and the 50 ms output-triggered row (default spacing)
};

Options ParseFlags(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.starts_with("--requests=")) {
      options.requests = static_cast<uint32_t>(std::stoul(flag.substr(11)));
    } else if (flag == "--no-results") {
      options.write_results = false;
    } else if (flag == "--quick") {
      options.quick = true;
    } else {
      std::fprintf(stderr, "flags: --requests=200 --no-results --quick\n");
      std::exit(2);
    }
  }
  return options;
}

struct Measurement {
  std::string configuration;
  std::vector<double> latencies_ms;  // one client, sequential requests
  double concurrent_requests_per_second = 0;
  // Protected only, over the whole measurement (warm-up, sequential and concurrent clients).
  std::optional<double> checkpoints_per_second;
  std::optional<double> triggered_per_second;
  nlohmann::json status;  // the primary's, at the end (pause, commit, pacing)
  double load_before = 0, load_after = 0;
};

struct Configuration {
  uint32_t interval_ms = 0;  // 0: unprotected
  bool triggered = false;
  uint32_t spacing_ms = 5;
};

// Runs `clients` service clients (ids from 1) with `requests` each inside the namespace and
// returns their logs' paths once all exit.
Result<std::vector<std::string>> RunClients(const ClientNetwork& network, const std::string& dir, int first_id,
                                            int clients, uint32_t requests) {
  std::vector<ChildProcess> running;
  std::vector<std::string> logs;
  for (int id = first_id; id < first_id + clients; ++id) {
    logs.push_back(dir + "/bench-client-" + std::to_string(id) + ".jsonl");
    UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess client, network.SpawnServiceClient(id, requests, logs.back(), /*deadline_s=*/120));
    running.push_back(std::move(client));
  }
  for (ChildProcess& client : running) {
    Result<int> exited = client.WaitForExit(Deadline::AfterMillis(150000));
    if (!exited.ok() || *exited != 0) return Status::Internal("a service client failed; see " + dir);
  }
  return logs;
}

// First-answer times (ms since the client started) of requests 1..n, from a client's log.
std::vector<double> AnswerTimes(const std::string& log) {
  std::vector<double> first_ok;
  std::ifstream file(log);
  std::string line;
  while (std::getline(file, line)) {
    nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
    if (!entry.is_object() || entry.value("status", "") != "ok") continue;
    size_t request = entry.value("request", size_t{0});
    if (request == 0) continue;
    if (first_ok.size() < request) first_ok.resize(request, -1);
    if (first_ok[request - 1] < 0) first_ok[request - 1] = entry.value("at_ms", 0.0);
  }
  return first_ok;
}

Result<Measurement> Measure(const std::string& configuration, const ClientNetwork& network, const std::string& dir,
                            uint32_t requests, int& next_client_id) {
  Measurement measurement;
  measurement.configuration = configuration;
  // Warm-up: the first ARP exchange and the guest's first answer are not what is measured.
  UNDERSTUDY_RETURN_IF_ERROR(RunClients(network, dir, next_client_id++, 1, 5).status());
  UNDERSTUDY_ASSIGN_OR_RETURN(std::vector<std::string> sequential, RunClients(network, dir, next_client_id++, 1, requests));
  std::vector<double> answered = AnswerTimes(sequential[0]);
  for (size_t r = 1; r < answered.size(); ++r) {
    if (answered[r] >= 0 && answered[r - 1] >= 0) measurement.latencies_ms.push_back(answered[r] - answered[r - 1]);
  }
  Clock::time_point started = Clock::now();
  UNDERSTUDY_RETURN_IF_ERROR(RunClients(network, dir, next_client_id, 4, requests).status());
  next_client_id += 4;
  measurement.concurrent_requests_per_second = 4.0 * requests / SecondsSince(started);
  return measurement;
}

Result<Measurement> MeasureUnprotected(uint32_t requests, int& next_client_id) {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<ClientNetwork> network, ClientNetwork::Create());
  UNDERSTUDY_ASSIGN_OR_RETURN(testing::ScratchDir dir, testing::ScratchDir::Create("ut-netbench"));
  qemu::VmDefinition definition = testing::NetServiceGuestDefinition();
  definition.nic.kind = qemu::NicBackend::Kind::kStreamUnixServer;
  definition.nic.path = dir.path() + "/net.sock";
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::TestGuest> guest, testing::TestGuest::Start(definition, "netbench"));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<network::FrameRelay> relay,
                              network::FrameRelay::Connect(definition.nic.path, ClientNetwork::kPrimaryTap,
                                                           network->namespace_path(), network::FrameRelay::Mode::kDirect));
  return Measure("unprotected (same relay, frames out at once)", *network, dir.path(), requests, next_client_id);
}

Result<Measurement> MeasureProtected(const Configuration& configuration, uint32_t requests, int& next_client_id) {
  testing::AgentPairOptions options;
  options.network = true;
  options.checkpoint_interval_ms = configuration.interval_ms;
  options.output_triggered_checkpoints = configuration.triggered;
  options.min_checkpoint_spacing_ms = configuration.spacing_ms;
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::AgentPair> pair, testing::AgentPair::Start(options, "netbench"));
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json before, pair->PrimaryStatus());
  Clock::time_point started = Clock::now();
  std::string name = "protected, " + std::to_string(configuration.interval_ms) + " ms interval, output-triggered " +
                     (configuration.triggered ? "on" : "off");
  if (configuration.triggered) name += ", spacing " + std::to_string(configuration.spacing_ms) + " ms";
  UNDERSTUDY_ASSIGN_OR_RETURN(Measurement measurement,
                              Measure(name, *pair->network(), pair->directory(), requests, next_client_id));
  double seconds = SecondsSince(started);
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json after, pair->PrimaryStatus());
  measurement.checkpoints_per_second =
      (after.value("checkpoints", 0.0) - before.value("checkpoints", 0.0)) / seconds;
  measurement.triggered_per_second =
      (after.value("checkpoints_triggered", 0.0) - before.value("checkpoints_triggered", 0.0)) / seconds;
  measurement.status = std::move(after);
  return measurement;
}

std::string StatusNumber(const nlohmann::json& status, const char* field, const char* nested = nullptr) {
  const nlohmann::json& object = nested ? status.value(nested, nlohmann::json::object()) : status;
  if (!object.is_object() || !object.contains(field) || !object[field].is_number()) return "-";
  return Format("%.2f", object[field].get<double>());
}

int Run(const Options& options) {
  if (auto reason = testing::AgentPairUnavailableReason(/*separate_hosts=*/true)) {
    std::fprintf(stderr, "network_bench cannot run here: %s\n", reason->c_str());
    return 1;
  }
  int next_client_id = 1;
  std::vector<Configuration> configurations = {{0, false, 0}, {50, false, 5}, {50, true, 5}, {50, true, 2},
                                               {20, false, 5}, {20, true, 5}};
  if (options.quick) configurations = {{0, false, 0}, {50, true, 2}};  // the default spacing
  std::vector<Measurement> measurements;
  for (const Configuration& configuration : configurations) {
    double load_before = LoadAverage1();
    Result<Measurement> measured = configuration.interval_ms == 0
                                       ? MeasureUnprotected(options.requests, next_client_id)
                                       : MeasureProtected(configuration, options.requests, next_client_id);
    if (!measured.ok()) {
      std::fprintf(stderr, "network_bench: %s\n", measured.status().ToString().c_str());
      return 1;
    }
    measured->load_before = load_before;
    measured->load_after = LoadAverage1();
    std::fprintf(stderr, "measured: %s (p50 %.2f ms)\n", measured->configuration.c_str(),
                 Percentile(measured->latencies_ms, 0.5));
    measurements.push_back(std::move(*measured));
  }
  const Measurement& baseline = measurements[0];
  double baseline_p50 = Percentile(baseline.latencies_ms, 0.5);
  Table table({"configuration", "p50 ms", "p99 ms", "p50 vs unprotected", "4 clients req/s", "rate vs unprotected",
               "checkpoints/s", "triggered/s", "load avg"});
  Table breakdown({"configuration", "reply p50 ms", "output held → VM stopped p50 / p99 ms", "pause p50 / p99 ms",
                   "VM stopped → ack p50 / p99 ms", "pacing interval ms"});
  for (const Measurement& m : measurements) {
    double p50 = Percentile(m.latencies_ms, 0.5);
    table.AddRow({m.configuration, Format("%.2f", p50), Format("%.2f", Percentile(m.latencies_ms, 0.99)),
                  Format("%.1fx", baseline_p50 > 0 ? p50 / baseline_p50 : 0),
                  Format("%.0f", m.concurrent_requests_per_second),
                  Format("%.2fx", m.concurrent_requests_per_second / baseline.concurrent_requests_per_second),
                  m.checkpoints_per_second ? Format("%.1f", *m.checkpoints_per_second) : "-",
                  m.triggered_per_second ? Format("%.1f", *m.triggered_per_second) : "-",
                  Format("%.1f-%.1f", m.load_before, m.load_after)});
    if (m.status.is_object()) {
      breakdown.AddRow({m.configuration, Format("%.2f", p50),
                        StatusNumber(m.status, "output_wait_ms_p50", "pacing") + " / " +
                            StatusNumber(m.status, "output_wait_ms_p99", "pacing"),
                        StatusNumber(m.status, "pause_ms_p50") + " / " + StatusNumber(m.status, "pause_ms_p99"),
                        StatusNumber(m.status, "commit_ms_p50") + " / " + StatusNumber(m.status, "commit_ms_p99"),
                        StatusNumber(m.status, "interval_ms", "pacing")});
    }
  }
  std::string body = Format("Run %s on %s, %s; `bazel run //bench:network_bench`.\n\n", UtcNow().c_str(),
                            MachineDescription().c_str(), BuildMode().c_str()) +
                     Format("%u sequential requests from one client (latency: first send to answer, retransmissions "
                            "included), then %u requests from each of 4 concurrent clients.\n\n",
                            options.requests, options.requests) +
                     table.Markdown() +
                     "\nWhere a protected reply's time goes (the primary's status at the end of the row: its last "
                     "<=1000 checkpoints; output waits over output-triggered checkpoints only):\n\n" +
                     breakdown.Markdown();
  PublishResults("network_bench", body, options.write_results);
  return 0;
}

}  // namespace
}  // namespace understudy::bench

int main(int argc, char** argv) { return understudy::bench::Run(understudy::bench::ParseFlags(argc, argv)); }
