// A checkpoint damaged in transit is rejected whole with a clear log line, the standby stays
// at the previous epoch, replication recovers, and a later promotion still shows the
// observer a continuous sequence.
#include <gtest/gtest.h>

#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

namespace understudy::testing {
namespace {

constexpr uint64_t kCorruptEpoch = 20;

TEST(SecondaryRejectsBadCheckpointTest, DamagedCheckpointIsRejectedAndPromotionStaysContinuous) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  AgentPairOptions options;
  options.guest = {.pages = 64};
  options.corrupt_epoch = kCorruptEpoch;
  auto pair = AgentPair::Start(options, "reject");
  ASSERT_TRUE(pair.ok()) << pair.status();
  console::ConsoleFollower follower = (*pair)->Follower();
  CounterTranscript transcript;

  // Replication must get past the damaged epoch.
  Deadline deadline = Deadline::AfterMillis(30000);
  uint64_t committed = 0;
  while (committed < kCorruptEpoch + 10) {
    ASSERT_FALSE(deadline.Expired()) << "replication did not recover; secondary log:\n"
                                     << (*pair)->SecondaryLog() << "\nprimary log:\n" << (*pair)->PrimaryLog();
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
    if (line.ok()) transcript.Observe(*line);
    Result<nlohmann::json> status = (*pair)->SecondaryStatus();
    if (status.ok()) committed = (*status)["committed_epoch"].get<uint64_t>();
  }
  Result<nlohmann::json> status = (*pair)->SecondaryStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["rejected_checkpoints"].get<uint64_t>(), 1u);
  std::string log = (*pair)->SecondaryLog();
  std::string expected = "rejected checkpoint (expected epoch " + std::to_string(kCorruptEpoch) + "): Corruption: checkpoint " +
                         std::to_string(kCorruptEpoch) + ": checksum mismatch in section";
  EXPECT_NE(log.find(expected), std::string::npos) << log;
  EXPECT_NE(log.find("standby stays at epoch " + std::to_string(kCorruptEpoch - 1)), std::string::npos) << log;

  (*pair)->KillPrimary();
  uint64_t last_before = transcript.last_number();
  while (transcript.last_number() < last_before + 5) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(20000));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << (*pair)->SecondaryLog();
    transcript.Observe(*line);
  }
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
}

}  // namespace
}  // namespace understudy::testing
