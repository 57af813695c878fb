// Continuous standby verification: on a healthy pair the secondary proves every period that
// the latest committed checkpoint loads and runs in a scratch QEMU. Damaging the stored
// device state (a test switch) makes verification fail with QEMU's own error, in the status
// and in the metric the alert watches — while the ready standby stays untouched: same QEMU,
// still ready, and once the damage stops a kill-primary drill still promotes it cleanly.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "control/control_server.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/ftctl_drill.h"
#include "tests/harness/prometheus_server.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

// Waits until the secondary reports a verification result with `succeeded`, finished after
// `after_epoch`'s commit.
Result<json> WaitForVerification(const AgentPair& pair, bool succeeded, uint64_t after_epoch) {
  Deadline deadline = Deadline::AfterMillis(60000);
  json last;
  while (!deadline.Expired()) {
    Result<json> status = pair.SecondaryStatus();
    if (status.ok()) {
      last = (*status)["last_verification"];
      if (last.is_object() && last["succeeded"] == succeeded && last["epoch"].get<uint64_t>() > after_epoch) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::DeadlineExceeded("no verification with succeeded=" + std::string(succeeded ? "true" : "false") +
                                  " after epoch " + std::to_string(after_epoch) + "; last: " + last.dump());
}

// The value of `metric` (a full series name with labels, as printed) in a /metrics scrape.
std::optional<double> MetricValue(const std::string& scrape, const std::string& metric_prefix) {
  size_t at = scrape.find("\n" + metric_prefix);
  if (at == std::string::npos) return std::nullopt;
  size_t end = scrape.find('\n', at + 1);
  std::string line = scrape.substr(at + 1, end - at - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

Status SetCorruption(const AgentPair& pair, bool corrupt) {
  return control::CallControl(pair.secondary_dir() + "/control.sock",
                              {{"command", "test_corrupt_device_state"}, {"corrupt", corrupt}}, Deadline::AfterMillis(2000))
      .status();
}

TEST(StandbyVerificationTest, CatchesADamagedDeviceStateWithoutTouchingTheStandby) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  AgentPairOptions options;
  options.guest = {.pages = 64};
  options.verify_period_ms = 1500;
  auto pair = AgentPair::Start(options, "verify");
  ASSERT_TRUE(pair.ok()) << pair.status();

  Result<json> healthy = WaitForVerification(**pair, true, 0);
  ASSERT_TRUE(healthy.ok()) << healthy.status() << "\n" << (*pair)->SecondaryLog();
  std::printf("healthy: %s\n", healthy->dump().c_str());
  Result<json> before = (*pair)->SecondaryStatus();
  ASSERT_TRUE(before.ok());
  const int standby_pid = (*before)["standby_qemu_pid"];
  const std::string metrics = (*before)["metrics_address"];
  Result<std::string> scrape = ScrapeMetrics(metrics);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(MetricValue(*scrape, "understudy_standby_verification_success{"), 1.0) << *scrape;

  // Damage: from now on the committed device state is stored truncated.
  ASSERT_TRUE(SetCorruption(**pair, true).ok());
  uint64_t damaged_from = (*pair)->SecondaryStatus()->value("committed_epoch", uint64_t{0});
  Result<json> failed = WaitForVerification(**pair, false, damaged_from);
  ASSERT_TRUE(failed.ok()) << failed.status() << "\n" << (*pair)->SecondaryLog();
  std::printf("damaged: %s\n", failed->dump().c_str());
  std::string error = (*failed)["error"];
  EXPECT_NE(error.find("QEMU log"), std::string::npos) << "QEMU's own error is not recorded: " << error;
  scrape = ScrapeMetrics(metrics);
  ASSERT_TRUE(scrape.ok());
  EXPECT_EQ(MetricValue(*scrape, "understudy_standby_verification_success{"), 0.0) << "the alert condition is not set";
  std::optional<double> failures = MetricValue(*scrape, "understudy_standby_verifications_total{host=\"secondary\",result=\"failed\"");
  EXPECT_TRUE(failures && *failures >= 1) << *scrape;

  // The ready standby was never touched: same QEMU, alive, still ready.
  Result<json> during = (*pair)->SecondaryStatus();
  ASSERT_TRUE(during.ok());
  EXPECT_EQ((*during)["standby_qemu_pid"], standby_pid);
  EXPECT_EQ(::kill(standby_pid, 0), 0) << "the standby QEMU is gone";
  EXPECT_EQ((*during)["state"], "standby-ready");

  // Damage over: verification recovers, and the standby still takes over cleanly.
  ASSERT_TRUE(SetCorruption(**pair, false).ok());
  uint64_t repaired_from = (*pair)->SecondaryStatus()->value("committed_epoch", uint64_t{0});
  Result<json> recovered = WaitForVerification(**pair, true, repaired_from);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  Result<json> drill = RunFtctlDrill("kill-primary", **pair);
  ASSERT_TRUE(drill.ok()) << drill.status();
  EXPECT_TRUE((*drill)["continuity_held"].get<bool>()) << (*drill)["verdict"];
  EXPECT_EQ((*drill)["outcome"], "secondary promoted");
}

}  // namespace
}  // namespace understudy::testing
