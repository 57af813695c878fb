// Disk replication end to end: the disk guest writes numbered records to a disk the primary
// serves and replicates; the secondary commits each epoch's writes with its memory. Ten
// kill-primary failovers at random moments: after each, the promoted guest keeps writing —
// its own check before every append (disk holds exactly the records its memory counted)
// passes, or it would print "VERIFY FAILED" and stop — and the console stays continuous.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

namespace understudy::testing {
namespace {

TEST(DiskFailoverTest, TenKillsLeaveDiskAndMemoryAgreeing) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  std::mt19937 random(std::random_device{}());
  for (int trial = 0; trial < 10; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    AgentPairOptions options;
    options.disk = true;
    auto pair = AgentPair::Start(options, "disk");
    ASSERT_TRUE(pair.ok()) << pair.status();
    console::ConsoleFollower follower = (*pair)->Follower();
    CounterTranscript transcript;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000 + random() % 2000);
    while (std::chrono::steady_clock::now() < until) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
      if (line.ok()) transcript.Observe(*line);
    }
    uint64_t before_kill = transcript.last_number();
    (*pair)->KillPrimary();
    // The promoted guest must write (and verify) several more records.
    Deadline deadline = Deadline::AfterMillis(20000);
    while (transcript.last_number() < before_kill + 20 && transcript.continuous() && !deadline.Expired()) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(500));
      if (line.ok()) transcript.Observe(*line);
    }
    EXPECT_TRUE(transcript.continuous()) << *transcript.violation() << "\nsecondary log:\n" << (*pair)->SecondaryLog();
    EXPECT_GE(transcript.last_number(), before_kill + 20) << "the promoted guest stopped writing\n" << (*pair)->SecondaryLog();
    Result<nlohmann::json> status = (*pair)->SecondaryStatus();
    ASSERT_TRUE(status.ok());
    std::printf("trial %d: killed after record %llu, promoted at epoch %llu, %llu records seen, verification held\n", trial,
                static_cast<unsigned long long>(before_kill),
                static_cast<unsigned long long>((*status)["committed_epoch"].get<uint64_t>()),
                static_cast<unsigned long long>(transcript.last_number()));
    std::fflush(stdout);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace understudy::testing
