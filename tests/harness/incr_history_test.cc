#include "tests/harness/incr_history.h"

#include <gtest/gtest.h>

namespace understudy::testing {
namespace {

IncrClientLog Client(int id, const std::vector<std::string>& replies) {
  IncrClientLog log{id, "counter:" + std::to_string(id), {}};
  for (const std::string& reply : replies) log.outcomes.push_back({true, reply, "", 0, 10});
  return log;
}

TEST(IncrHistoryTest, ConsecutiveRepliesAndMatchingFinalValuesAreOneHistory) {
  IncrVerdict verdict = CheckIncrHistory({Client(1, {"1", "2", "3"}), Client(2, {"1", "2"})},
                                         {{"counter:1", "3"}, {"counter:2", "2"}});
  EXPECT_TRUE(verdict.consistent) << verdict.Summary();
  EXPECT_EQ(verdict.replies, 5u);
  EXPECT_EQ(verdict.unanswered, 0u);
}

TEST(IncrHistoryTest, ARepeatedReplyIsARollback) {
  IncrVerdict verdict = CheckIncrHistory({Client(1, {"1", "2", "3"}), Client(2, {"1", "2", "2", "3"})}, {});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_NE(verdict.violation.find("client 2"), std::string::npos) << verdict.violation;
  EXPECT_NE(verdict.violation.find("reply #3 is 2 after 2 (repeat"), std::string::npos) << verdict.violation;
}

TEST(IncrHistoryTest, ASkippedValueIsALostOrDoubledIncrement) {
  IncrVerdict verdict = CheckIncrHistory({Client(1, {"1", "3"})}, {});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_NE(verdict.violation.find("skip"), std::string::npos) << verdict.violation;
}

TEST(IncrHistoryTest, TheFirstReplyMustBeOne) {
  EXPECT_FALSE(CheckIncrHistory({Client(1, {"2", "3"})}, {}).consistent);
}

TEST(IncrHistoryTest, ANonNumericReplyIsAViolation) {
  IncrVerdict verdict = CheckIncrHistory({Client(1, {"1", "ERR wrong type"})}, {});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_NE(verdict.violation.find("not a count"), std::string::npos) << verdict.violation;
}

TEST(IncrHistoryTest, AFinalValueAboveTheLastReplyIsAnUnseenIncrement) {
  IncrVerdict verdict = CheckIncrHistory({Client(1, {"1", "2"})}, {{"counter:1", "3"}});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_NE(verdict.violation.find("GET says '3'"), std::string::npos) << verdict.violation;
}

TEST(IncrHistoryTest, UnansweredRequestsAreCountedNotJudged) {
  IncrClientLog client = Client(1, {"1", "2"});
  client.outcomes.push_back({false, "", "redis-cli timed out", 0, 30000});
  IncrVerdict verdict = CheckIncrHistory({client}, {{"counter:1", "2"}});
  EXPECT_TRUE(verdict.consistent) << verdict.Summary();
  EXPECT_EQ(verdict.unanswered, 1u);
  EXPECT_NE(verdict.first_error.find("timed out"), std::string::npos);
}

TEST(IncrHistoryTest, AnUnansweredRequestMayHaveBeenApplied) {
  IncrClientLog client = Client(1, {"1", "2"});
  client.outcomes.push_back({false, "", "connection reset", 0, 5});
  client.outcomes.push_back({true, "4", "", 0, 5});  // the unanswered request was applied
  client.outcomes.push_back({false, "", "connection reset", 0, 5});
  EXPECT_TRUE(CheckIncrHistory({client}, {{"counter:1", "5"}}).consistent);
  EXPECT_TRUE(CheckIncrHistory({client}, {{"counter:1", "4"}}).consistent);
  EXPECT_FALSE(CheckIncrHistory({client}, {{"counter:1", "6"}}).consistent);
  client.outcomes.push_back({true, "4", "", 0, 5});  // an unanswered request never lowers the count
  IncrVerdict verdict = CheckIncrHistory({client}, {});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_NE(verdict.violation.find("repeat"), std::string::npos) << verdict.violation;
}

TEST(IncrHistoryTest, AFinalValueBelowTheLastReplyUndidAnAnsweredIncrement) {
  EXPECT_FALSE(CheckIncrHistory({Client(1, {"1", "2"})}, {{"counter:1", "1"}}).consistent);
  EXPECT_FALSE(CheckIncrHistory({Client(1, {"1", "2"})}, {{"counter:1", ""}}).consistent);
}

}  // namespace
}  // namespace understudy::testing
