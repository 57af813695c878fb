// A real Prometheus scrapes both agents of a live pair. Through its query API: the pause
// histogram's count rises while the pair runs, the primary reports `protected`; after a
// kill-primary drill the secondary's failover counter rose and its state is `promoted`.
#include <gtest/gtest.h>

#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/ftctl_drill.h"
#include "tests/harness/prometheus_server.h"

namespace understudy::testing {
namespace {

// Polls `promql` until it returns one series satisfying `accept`, or 15 s pass.
Result<double> WaitForValue(const PrometheusServer& prometheus, const std::string& promql,
                            const std::function<bool(double)>& accept) {
  Deadline deadline = Deadline::AfterMillis(15000);
  Result<double> value = Status::NotFound("not queried yet");
  while (!deadline.Expired()) {
    value = prometheus.QueryValue(promql);
    if (value.ok() && accept(*value)) return value;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (value.ok()) return Status::FailedPrecondition(promql + " stayed at " + std::to_string(*value));
  return value;
}

// What a failure needs to be understood: Prometheus' own view of its targets first (`up`, how
// long the last scrape took: a value that "stayed" may be a scrape that failed rather than an
// agent that stopped), then each agent's status as `ftctl status` shows it (state, epochs,
// checkpoint count, pacing and why, transitions, last error), both agents' logs and the end of
// the primary QEMU's.
std::string PairDiagnostics(const AgentPair& pair, const PrometheusServer* prometheus = nullptr) {
  auto status = [](const Result<nlohmann::json>& json) { return json.ok() ? json->dump() : json.status().ToString(); };
  std::string qemu_log = pair.PrimaryQemuLog();
  if (qemu_log.size() > 4000) qemu_log = "..." + qemu_log.substr(qemu_log.size() - 4000);
  std::string scrapes;
  if (prometheus != nullptr) {
    for (const char* promql : {"up", "scrape_duration_seconds"}) {
      Result<nlohmann::json> result = prometheus->Query(promql);
      scrapes += std::string("\nprometheus ") + promql + ": " + (result.ok() ? result->dump() : result.status().ToString());
    }
  }
  return scrapes + "\nprimary status: " + status(pair.PrimaryStatus()) + "\nsecondary status: " + status(pair.SecondaryStatus()) +
         "\nprimary log:\n" + pair.PrimaryLog() + "\nsecondary log:\n" + pair.SecondaryLog() +
         "\nprimary QEMU log (end):\n" + qemu_log;
}

TEST(PrometheusScrapeTest, PrometheusSeesCheckpointsTheStateAndAFailover) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  if (auto why = PrometheusUnavailableReason()) GTEST_SKIP() << "skipped: " << *why;
  AgentPairOptions options;
  options.guest = {.pages = 64};
  auto pair = AgentPair::Start(options, "scrape");
  ASSERT_TRUE(pair.ok()) << pair.status();
  Result<nlohmann::json> primary = (*pair)->PrimaryStatus();
  Result<nlohmann::json> secondary = (*pair)->SecondaryStatus();
  ASSERT_TRUE(primary.ok() && secondary.ok());
  std::vector<std::string> targets = {(*primary)["metrics_address"], (*secondary)["metrics_address"]};
  std::printf("scraping %s and %s\n", targets[0].c_str(), targets[1].c_str());
  auto prometheus = PrometheusServer::Start(targets);
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();

  const std::string pauses = R"(understudy_checkpoint_pause_seconds_count{role="primary"})";
  Result<double> first = WaitForValue(**prometheus, pauses, [](double count) { return count > 0; });
  ASSERT_TRUE(first.ok()) << first.status() << PairDiagnostics(**pair, prometheus->get());
  Result<double> later = WaitForValue(**prometheus, pauses, [&](double count) { return count > *first + 10; });
  ASSERT_TRUE(later.ok()) << later.status() << PairDiagnostics(**pair, prometheus->get());
  std::printf("pause histogram count %.0f -> %.0f\n", *first, *later);
  Result<double> p99 = (*prometheus)->QueryValue(
      R"(histogram_quantile(0.99, rate(understudy_checkpoint_pause_seconds_bucket{role="primary"}[5s])))");
  if (p99.ok()) std::printf("pause p99 (Prometheus' estimate): %.2f ms\n", *p99 * 1000);
  Result<double> protected_state = WaitForValue(
      **prometheus, R"(understudy_pair_state{role="primary",state="protected"})", [](double v) { return v == 1; });
  EXPECT_TRUE(protected_state.ok()) << protected_state.status() << PairDiagnostics(**pair, prometheus->get());
  // An arbiter outage changes nothing while the pair is healthy, but forbids any failover:
  // both agents must show it, and its end.
  (*pair)->etcd()->Kill();
  for (const char* role : {"primary", "secondary"}) {
    Result<double> unreachable = WaitForValue(
        **prometheus, std::string(R"(understudy_arbiter_reachable{role=")") + role + R"("})", [](double v) { return v == 0; });
    EXPECT_TRUE(unreachable.ok()) << role << ": " << unreachable.status() << PairDiagnostics(**pair, prometheus->get());
  }
  ASSERT_TRUE((*pair)->etcd()->Restart().ok());
  for (const char* role : {"primary", "secondary"}) {
    Result<double> reachable = WaitForValue(
        **prometheus, std::string(R"(understudy_arbiter_reachable{role=")") + role + R"("})", [](double v) { return v == 1; });
    EXPECT_TRUE(reachable.ok()) << role << ": " << reachable.status() << PairDiagnostics(**pair, prometheus->get());
  }
  std::printf("both agents reported the arbiter outage and its end\n");
  Result<double> failovers_before = WaitForValue(**prometheus, R"(understudy_failovers_total{role="secondary"})",
                                                 [](double) { return true; });
  ASSERT_TRUE(failovers_before.ok()) << failovers_before.status() << PairDiagnostics(**pair, prometheus->get());

  Result<nlohmann::json> drill = RunFtctlDrill("kill-primary", **pair);
  ASSERT_TRUE(drill.ok()) << drill.status() << PairDiagnostics(**pair, prometheus->get());
  EXPECT_TRUE((*drill)["continuity_held"].get<bool>()) << drill->dump() << PairDiagnostics(**pair, prometheus->get());

  Result<double> failovers_after = WaitForValue(**prometheus, R"(understudy_failovers_total{role="secondary"})",
                                                [&](double v) { return v > *failovers_before; });
  EXPECT_TRUE(failovers_after.ok()) << failovers_after.status() << PairDiagnostics(**pair, prometheus->get());
  Result<double> promoted = WaitForValue(**prometheus, R"(understudy_pair_state{role="secondary",state="promoted"})",
                                         [](double v) { return v == 1; });
  EXPECT_TRUE(promoted.ok()) << promoted.status() << PairDiagnostics(**pair, prometheus->get());
  Result<double> duration = (*prometheus)->QueryValue(R"(understudy_failover_duration_seconds_sum{role="secondary"})");
  if (duration.ok()) std::printf("failover duration recorded by the secondary: %.1f ms\n", *duration * 1000);
}

}  // namespace
}  // namespace understudy::testing
