// Output commit: while the secondary is stalled — alive and heartbeating, but not
// acknowledging (a test-only hold; a SIGSTOPped secondary would rightly be declared dead and
// the primary would go unprotected) — the observer receives nothing new although the guest
// keeps printing; once acks resume, the held output appears, in order, with nothing lost.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

namespace understudy::testing {
namespace {

TEST(NoOutputBeforeAckTest, AStalledSecondaryHoldsAllOutput) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  AgentPairOptions options;
  options.guest = {.pages = 64};
  auto pair = AgentPair::Start(options, "noack");
  ASSERT_TRUE(pair.ok()) << pair.status();
  console::ConsoleFollower follower = (*pair)->Follower();
  CounterTranscript transcript;
  while (transcript.lines_observed() < 5) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(20000));
    ASSERT_TRUE(line.ok()) << line.status();
    transcript.Observe(*line);
  }

  ASSERT_TRUE((*pair)->HoldSecondaryAcks(true).ok());
  // What was acknowledged before the stall may still trickle out; let it (bounded).
  Deadline settle = Deadline::AfterMillis(3000);
  while (!settle.Expired()) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(500));
    if (!line.ok()) break;
    transcript.Observe(*line);
  }
  uint64_t released_at_stall = follower.offset();
  Result<nlohmann::json> status = (*pair)->PrimaryStatus();
  ASSERT_TRUE(status.ok());
  uint64_t held_at_stall = (*status)["console_held_bytes"].get<uint64_t>();

  // For 3 s: nothing new reaches the observer, while the guest keeps printing into the buffer.
  Result<std::string> leaked = follower.Read(Deadline::AfterMillis(3000));
  EXPECT_EQ(leaked.status().code(), Status::Code::kDeadlineExceeded)
      << "output escaped before its checkpoint was acknowledged: '" << (leaked.ok() ? *leaked : "") << "'";
  EXPECT_EQ(follower.offset(), released_at_stall);
  status = (*pair)->PrimaryStatus();
  ASSERT_TRUE(status.ok());
  uint64_t held_after = (*status)["console_held_bytes"].get<uint64_t>();
  EXPECT_EQ((*status)["state"], "protected") << "a stalled secondary must not make the primary go unprotected";
  EXPECT_GT(held_after, held_at_stall) << "the guest printed nothing during the stall: nothing was proven";
  std::printf("held during a 3 s stall: %llu bytes, none released\n", static_cast<unsigned long long>(held_after));

  ASSERT_TRUE((*pair)->HoldSecondaryAcks(false).ok());
  uint64_t target = released_at_stall + held_after;
  while (follower.offset() < target) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(10000));
    ASSERT_TRUE(line.ok()) << "held output did not appear after the secondary resumed: " << line.status();
    transcript.Observe(*line);
  }
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
}

}  // namespace
}  // namespace understudy::testing
