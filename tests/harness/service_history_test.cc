#include "tests/harness/service_history.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace understudy::testing {
namespace {

// Hand-written client logs, in the format service_client writes.
class ServiceHistoryTest : public ::testing::Test {
 protected:
  // Writes a log for `client` planning `requests` requests; `lines` follow the header.
  std::string Log(uint32_t client, uint32_t requests, const std::vector<std::string>& lines) {
    const char* dir = std::getenv("TEST_TMPDIR");
    std::string path = std::string(dir ? dir : "/tmp") + "/" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                       std::to_string(logs_written_++) + ".jsonl";
    std::ofstream file(path, std::ios::trunc);
    file << Header(client, requests) << "\n";
    for (const std::string& line : lines) file << line << "\n";
    return path;
  }

  static std::string Header(uint32_t client, uint32_t requests) {
    return R"({"client":)" + std::to_string(client) + R"(,"server":"10.96.0.2:7000","requests":)" +
           std::to_string(requests) + R"(,"retransmit_ms":200,"started_unix_ms":1700000000000,"at_ms":0})";
  }
  static std::string Reply(uint32_t client, uint32_t request, const std::string& status, uint64_t value, int at_ms) {
    return R"({"client":)" + std::to_string(client) + R"(,"request":)" + std::to_string(request) + R"(,"status":")" +
           status + R"(","value":)" + std::to_string(value) + R"(,"at_ms":)" + std::to_string(at_ms) + "}";
  }
  static std::string Retransmit(uint32_t client, uint32_t request, int at_ms) {
    return R"({"client":)" + std::to_string(client) + R"(,"retransmit":)" + std::to_string(request) + R"(,"at_ms":)" +
           std::to_string(at_ms) + "}";
  }

  static HistoryVerdict Check(const std::vector<std::string>& paths) {
    Result<HistoryVerdict> verdict = CheckServiceHistory(paths);
    EXPECT_TRUE(verdict.ok()) << verdict.status();
    return verdict.ok() ? *verdict : HistoryVerdict{};
  }

  int logs_written_ = 0;
};

TEST_F(ServiceHistoryTest, AConsistentHistoryPasses) {
  // Two clients interleaved: values 1..5. Client 1's request 2 is retransmitted and answered
  // twice with the same value, then a late "stale" for request 1 arrives.
  std::string client0 = Log(0, 2, {Reply(0, 1, "ok", 1, 3), Reply(0, 2, "ok", 4, 10)});
  std::string client1 = Log(1, 3,
                            {Reply(1, 1, "ok", 2, 4), Retransmit(1, 2, 205), Reply(1, 2, "ok", 3, 900),
                             Reply(1, 2, "ok", 3, 901), Reply(1, 1, "stale", 0, 905), Reply(1, 3, "ok", 5, 910)});
  HistoryVerdict verdict = Check({client0, client1});
  EXPECT_TRUE(verdict.consistent) << verdict.violation;
  EXPECT_EQ(verdict.violation, "");
  EXPECT_TRUE(verdict.all_completed);
  EXPECT_EQ(verdict.replies, 7u);
  EXPECT_EQ(verdict.distinct_requests, 5u);
  EXPECT_EQ(verdict.max_value, 5u);
  EXPECT_EQ(verdict.retransmissions, 1u);
  ASSERT_EQ(verdict.clients.size(), 2u);
  EXPECT_EQ(verdict.clients[1].client_id, 1u);
  EXPECT_EQ(verdict.clients[1].requests_answered, 3u);
  EXPECT_EQ(verdict.clients[1].longest_stall_ms, 896);  // request 2: sent at 4, answered at 900
  EXPECT_EQ(verdict.clients[1].longest_stall_request, 2u);
  EXPECT_EQ(verdict.Summary(),
            "consistent: 2 clients, 5 requests answered ok (largest value 5), 7 replies, 1 retransmissions, all "
            "completed; longest stall 896 ms (client 1 request 2)");
}

TEST_F(ServiceHistoryTest, AContradictedReplyIsARollback) {
  std::string client2 = Log(2, 2, {Reply(2, 1, "ok", 1, 900), Reply(2, 2, "ok", 3, 1834), Reply(2, 2, "ok", 2, 2210)});
  HistoryVerdict verdict = Check({client2});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_EQ(verdict.violation,
            "client 2 request 2 was answered 3 at 1834 ms and 2 at 2210 ms: the first reply came from state that "
            "was later rolled back");
}

TEST_F(ServiceHistoryTest, OneValueForTwoRequestsIsADoubleApply) {
  std::string client0 = Log(0, 2, {Reply(0, 1, "ok", 1, 5), Reply(0, 2, "ok", 2, 9)});
  std::string client1 = Log(1, 1, {Reply(1, 1, "ok", 2, 7)});
  HistoryVerdict verdict = Check({client0, client1});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_EQ(verdict.violation,
            "value 2 was answered to client 0 request 2 at 9 ms and to client 1 request 1 at 7 ms (each client's own "
            "clock): a request was applied twice, or a value was handed out again after a rollback");
}

TEST_F(ServiceHistoryTest, ValuesMustIncreaseWithinAClient) {
  std::string client0 = Log(0, 2, {Reply(0, 1, "ok", 2, 5), Reply(0, 2, "ok", 1, 9)});
  HistoryVerdict verdict = Check({client0});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_EQ(verdict.violation,
            "client 0 request 1 was answered 2 at 5 ms but the later request 2 was answered 1 at 9 ms: the values of "
            "one client must increase");
}

TEST_F(ServiceHistoryTest, AGapAfterAnOkIsALostAcknowledgedRequest) {
  // Every retransmission of request 2 draws "gap" again; one report covers them.
  std::string client3 = Log(
      3, 3, {Reply(3, 1, "ok", 1, 5), Reply(3, 2, "gap", 0, 400), Retransmit(3, 2, 600), Reply(3, 2, "gap", 0, 601)});
  HistoryVerdict verdict = Check({client3});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_FALSE(verdict.all_completed);
  EXPECT_EQ(verdict.violation_count, 1u);
  EXPECT_EQ(verdict.violation,
            "client 3 request 2 was answered gap at 400 ms although request 1 had been answered ok (1) at 5 ms: the "
            "service lost a request it had acknowledged");
}

TEST_F(ServiceHistoryTest, AStaleAnswerToTheOutstandingRequestMeansAnInventedRequest) {
  std::string client0 = Log(0, 2, {Reply(0, 1, "ok", 1, 5), Reply(0, 2, "stale", 0, 8), Reply(0, 2, "ok", 2, 9)});
  HistoryVerdict verdict = Check({client0});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_EQ(verdict.violation,
            "client 0 request 2 was answered stale at 8 ms before any ok for it: the service had applied a later "
            "request of client 0 that was never sent (another client with the same id?)");
}

TEST_F(ServiceHistoryTest, RepliesToRequestsNeverSentOrToOtherClientsAreCaught) {
  std::string client0 = Log(0, 3, {Reply(0, 2, "ok", 1, 5)});
  HistoryVerdict unsent = Check({client0});
  EXPECT_FALSE(unsent.consistent);
  EXPECT_EQ(unsent.violation,
            "client 0 request 2 was answered ok at 5 ms, a request the client never sent (it had sent up to request "
            "1): a reply the service should not have produced");

  std::string client1 = Log(1, 1, {Reply(4, 1, "ok", 1, 5)});
  HistoryVerdict misrouted = Check({client1});
  EXPECT_FALSE(misrouted.consistent);
  EXPECT_EQ(misrouted.violation,
            "the log of client 1 holds a reply to client 4 request 1 at 5 ms: a reply delivered to the wrong client");
}

TEST_F(ServiceHistoryTest, AnUnansweredValueNeedsAClientThatGaveUp) {
  // Value 2 went to nobody. Client 1 stopped waiting for request 2, whose ok may have been
  // lost: fine. Had every client completed, something was applied that nobody asked for.
  std::string client0 = Log(0, 1, {Reply(0, 1, "ok", 1, 5)});
  std::string gave_up = Log(1, 2, {Reply(1, 1, "ok", 3, 7), Retransmit(1, 2, 207)});
  HistoryVerdict tolerated = Check({client0, gave_up});
  EXPECT_TRUE(tolerated.consistent) << tolerated.violation;
  EXPECT_FALSE(tolerated.all_completed);
  EXPECT_EQ(tolerated.clients[1].requests_answered, 1u);
  EXPECT_FALSE(tolerated.clients[1].completed);

  std::string completed = Log(1, 1, {Reply(1, 1, "ok", 3, 7)});
  HistoryVerdict verdict = Check({client0, completed});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_EQ(verdict.violation,
            "1 of the values 1..3 (2) were answered to nobody, but only 0 client(s) stopped with a request "
            "outstanding: the service applied requests whose replies no client saw");
}

TEST_F(ServiceHistoryTest, EveryViolationIsCountedTheFirstIsKept) {
  std::string client0 = Log(0, 3,
                            {Reply(0, 1, "ok", 1, 1), Reply(0, 1, "ok", 7, 2), Reply(0, 2, "ok", 2, 3),
                             Reply(0, 2, "ok", 8, 4), Reply(0, 3, "ok", 3, 5)});
  HistoryVerdict verdict = Check({client0});
  EXPECT_FALSE(verdict.consistent);
  EXPECT_GE(verdict.violation_count, 3u);  // two contradictions and the unanswered values 4..6
  ASSERT_FALSE(verdict.violations.empty());
  EXPECT_EQ(verdict.violations.front(), verdict.violation);
  EXPECT_EQ(verdict.violation,
            "client 0 request 1 was answered 1 at 1 ms and 7 at 2 ms: the first reply came from state that was later "
            "rolled back");
  EXPECT_NE(verdict.Summary().find("INCONSISTENT"), std::string::npos);
}

TEST_F(ServiceHistoryTest, UnreadableOrMalformedLogsAreErrorsNotVerdicts) {
  Result<HistoryVerdict> missing = CheckServiceHistory({"/nonexistent/service-client.jsonl"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);

  std::string garbage = Log(0, 1, {"Segmentation fault"});
  Result<HistoryVerdict> corrupt = CheckServiceHistory({garbage});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(corrupt.status().message(), garbage + " line 2: not a JSON object");

  std::string headless = Log(0, 1, {});
  { std::ofstream(headless, std::ios::trunc) << Reply(0, 1, "ok", 1, 5) << "\n"; }
  Result<HistoryVerdict> no_header = CheckServiceHistory({headless});
  ASSERT_FALSE(no_header.ok());
  EXPECT_EQ(no_header.status().message(), headless + " line 1: the first line is not a service_client header");

  std::string first = Log(5, 1, {});
  std::string second = Log(5, 1, {});
  Result<HistoryVerdict> same_id = CheckServiceHistory({first, second});
  ASSERT_FALSE(same_id.ok());
  EXPECT_EQ(same_id.status().code(), Status::Code::kInvalidArgument);

  EXPECT_FALSE(CheckServiceHistory({}).ok());
}

}  // namespace
}  // namespace understudy::testing
