// Network request latency, protected vs unprotected, in one run.
//
// The network guest (tests/guests/net_service.c) answers UDP requests; clients run in the
// client namespace of a ClientNetwork, as in network_failover_test. Configurations:
//   unprotected   the same guest, its NIC on the same tap through the same frame relay, but
//                 frames go out at once (no agent, no checkpoints): the baseline
//   protected     an AgentPair at 50 ms and at 20 ms checkpoint intervals: each reply waits for
//                 the checkpoint of the epoch that produced it to be acknowledged; each with
//                 output-triggered checkpoints off (only the periodic ones) and on (held
//                 output asks for a checkpoint at once, at most one per 5 ms)
// Latency of request r is the time from the client's first send of r (right after r-1's
// answer) to r's answer, retransmissions included; measured by the client itself, with one
// request outstanding. Also the aggregate rate of 4 concurrent clients.
//
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
};

Options ParseFlags(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.starts_with("--requests=")) {
      options.requests = static_cast<uint32_t>(std::stoul(flag.substr(11)));
    } else if (flag == "--no-results") {
      options.write_results = false;
    } else {
      std::fprintf(stderr, "flags: --requests=200 --no-results\n");
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

Result<Measurement> MeasureProtected(uint32_t interval_ms, bool triggered, uint32_t requests, int& next_client_id) {
  testing::AgentPairOptions options;
  options.network = true;
  options.checkpoint_interval_ms = interval_ms;
  options.output_triggered_checkpoints = triggered;
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<testing::AgentPair> pair, testing::AgentPair::Start(options, "netbench"));
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json before, pair->PrimaryStatus());
  Clock::time_point started = Clock::now();
  UNDERSTUDY_ASSIGN_OR_RETURN(
      Measurement measurement,
      Measure("protected, " + std::to_string(interval_ms) + " ms interval, output-triggered " + (triggered ? "on" : "off"),
              *pair->network(), pair->directory(), requests, next_client_id));
  double seconds = SecondsSince(started);
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json after, pair->PrimaryStatus());
  measurement.checkpoints_per_second =
      (after.value("checkpoints", 0.0) - before.value("checkpoints", 0.0)) / seconds;
  measurement.triggered_per_second =
      (after.value("checkpoints_triggered", 0.0) - before.value("checkpoints_triggered", 0.0)) / seconds;
  return measurement;
}

int Run(const Options& options) {
  if (auto reason = testing::AgentPairUnavailableReason(/*separate_hosts=*/true)) {
    std::fprintf(stderr, "network_bench cannot run here: %s\n", reason->c_str());
    return 1;
  }
  int next_client_id = 1;
  std::vector<Measurement> measurements;
  // Unprotected; then 50 and 20 ms intervals, each with output-triggered checkpoints off, on.
  for (int configuration = 0; configuration < 5; ++configuration) {
    Result<Measurement> measured =
        configuration == 0 ? MeasureUnprotected(options.requests, next_client_id)
                           : MeasureProtected(configuration <= 2 ? 50 : 20, /*triggered=*/configuration % 2 == 0,
                                              options.requests, next_client_id);
    if (!measured.ok()) {
      std::fprintf(stderr, "network_bench: %s\n", measured.status().ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "measured: %s\n", measured->configuration.c_str());
    measurements.push_back(std::move(*measured));
  }
  const Measurement& baseline = measurements[0];
  double baseline_p50 = Percentile(baseline.latencies_ms, 0.5);
  Table table({"configuration", "p50 ms", "p99 ms", "p50 vs unprotected", "4 clients req/s", "rate vs unprotected",
               "checkpoints/s", "triggered/s"});
  for (const Measurement& m : measurements) {
    double p50 = Percentile(m.latencies_ms, 0.5);
    table.AddRow({m.configuration, Format("%.2f", p50), Format("%.2f", Percentile(m.latencies_ms, 0.99)),
                  Format("%.1fx", baseline_p50 > 0 ? p50 / baseline_p50 : 0),
                  Format("%.0f", m.concurrent_requests_per_second),
                  Format("%.2fx", m.concurrent_requests_per_second / baseline.concurrent_requests_per_second),
                  m.checkpoints_per_second ? Format("%.1f", *m.checkpoints_per_second) : "-",
                  m.triggered_per_second ? Format("%.1f", *m.triggered_per_second) : "-"});
  }
  std::string body = Format("Run %s on %s, %s; `bazel run //bench:network_bench`.\n\n", UtcNow().c_str(),
                            MachineDescription().c_str(), BuildMode().c_str()) +
                     Format("%u sequential requests from one client (latency: first send to answer, retransmissions "
                            "included), then %u requests from each of 4 concurrent clients.\n\n",
                            options.requests, options.requests) +
                     table.Markdown();
  PublishResults("network_bench", body, options.write_results);
  return 0;
}

}  // namespace
}  // namespace understudy::bench

int main(int argc, char** argv) { return understudy::bench::Run(understudy::bench::ParseFlags(argc, argv)); }
