// Ten failovers of a protected counter guest. Each trial SIGKILLs the primary's QEMU and
// agent at a random moment — half of them while checkpoints are deliberately kept in flight
// (the secondary holds its acks), so the kill cuts a checkpoint transfer — and checks what
// the observer saw: every number exactly once, in order, still advancing 2 s later on the
// promoted standby.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

namespace understudy::testing {
namespace {

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The checkpoint path runs over each transport in turn.
class SerialFailoverTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SerialFailoverTest, TenKillsNeverShowARepeatOrAGap) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  std::mt19937 random(std::random_device{}());
  int cut_transfers = 0;
  std::vector<double> failover_ms;
  for (int trial = 0; trial < 10; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    bool hold_acks = trial % 2 == 1;
    AgentPairOptions options;
    options.transport = GetParam();
    options.guest = {.pages = 64};
    if (hold_acks) options.ack_delay_ms = 120;  // keeps checkpoints in flight at any moment
    auto pair = AgentPair::Start(options, "failover");
    ASSERT_TRUE(pair.ok()) << pair.status();
    console::ConsoleFollower follower = (*pair)->Follower();
    CounterTranscript transcript;

    // Watch for a random while, then kill.
    auto watch_until = Clock::now() + std::chrono::milliseconds(1000 + random() % 2000);
    while (Clock::now() < watch_until) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
      if (line.ok()) transcript.Observe(*line);
    }
    Result<nlohmann::json> before = (*pair)->PrimaryStatus();
    ASSERT_TRUE(before.ok()) << before.status();
    uint64_t captured = (*before)["epoch"].get<uint64_t>();
    uint64_t last_before_kill = transcript.last_number();
    Clock::time_point killed = Clock::now();
    (*pair)->KillPrimary();

    // The first number the observer had not seen before the kill.
    double first_new_ms = -1;
    Clock::time_point first_new;
    while (first_new_ms < 0) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(20000));
      ASSERT_TRUE(line.ok()) << "no output after the kill: " << line.status() << "\nprimary log:\n"
                             << (*pair)->PrimaryLog() << "\nsecondary log:\n" << (*pair)->SecondaryLog();
      transcript.Observe(*line);
      if (transcript.last_number() > last_before_kill) {
        first_new_ms = MillisSince(killed);
        first_new = Clock::now();
      }
    }
    // Still advancing 2 s later, on the standby.
    uint64_t at_first_new = transcript.last_number();
    while (Clock::now() < first_new + std::chrono::seconds(2)) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(5000));
      ASSERT_TRUE(line.ok()) << line.status();
      transcript.Observe(*line);
    }
    EXPECT_GT(transcript.last_number(), at_first_new) << "the promoted guest stopped printing";
    EXPECT_TRUE(transcript.continuous()) << *transcript.violation();

    Result<nlohmann::json> after = (*pair)->SecondaryStatus();
    ASSERT_TRUE(after.ok());
    EXPECT_EQ((*after)["state"], "promoted");
    uint64_t promoted_at = (*after)["committed_epoch"].get<uint64_t>();
    bool cut = promoted_at < captured;
    cut_transfers += cut ? 1 : 0;
    failover_ms.push_back(first_new_ms);
    std::printf("trial %d: %s, kill at epoch %llu, standby promoted at epoch %llu%s, %llu lines seen, "
                "kill -> first new output %.0f ms (promotion %.1f ms)\n",
                trial, hold_acks ? "acks held" : "acks prompt", static_cast<unsigned long long>(captured),
                static_cast<unsigned long long>(promoted_at), cut ? " (checkpoint in transfer was cut)" : "",
                static_cast<unsigned long long>(transcript.lines_observed()), first_new_ms,
                (*after)["promotion_ms"].get<double>());
    std::fflush(stdout);
  }
  std::sort(failover_ms.begin(), failover_ms.end());
  std::printf("%s: kill -> first new output: median %.0f ms, max %.0f ms; %d of 10 kills cut a checkpoint transfer\n",
              GetParam().c_str(), failover_ms[failover_ms.size() / 2], failover_ms.back(), cut_transfers);
  EXPECT_GE(cut_transfers, 3) << "too few kills landed inside a checkpoint transfer to prove anything";
}

INSTANTIATE_TEST_SUITE_P(Transports, SerialFailoverTest, ::testing::Values("tls", "zmq+curve"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "tls" ? std::string("Tls") : std::string("ZmqCurve");
                         });

}  // namespace
}  // namespace understudy::testing
