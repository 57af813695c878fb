// Network output commit end to end. The network guest (tests/guests/net_service.c) runs an
// exactly-once request service, protected; its NIC is on a bridge in a namespace of its own,
// where 4 client processes use ordinary UDP sockets with retransmission. Each trial kills the
// primary at a random moment while the clients are busy; the clients must finish every
// request through the promoted VM (same IP, its MAC relearned from announce-self), and every
// reply any client ever received must fit one serial history of the service
// (tests/harness/service_history.h). A reply leaves the VM only once the state that produced
// it is committed on the secondary — so no reply is ever contradicted after the failover.
//
// The negative control turns output commit off on the primary (frames go out at once): then
// some client must see a reply from state the failover rolled back, in at least one of ten.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/child_process.h"
#include "control/control_server.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/ftctl_drill.h"
#include "tests/harness/service_history.h"

namespace understudy::testing {
namespace {

constexpr int kClients = 4;

// How a trial runs: requests per client, when the kill comes, how long clients may take.
struct TrialShape {
  int requests;
  int kill_after_ms;         // at least ...
  int kill_spread_ms;        // ... plus up to this much, at random
  int client_deadline_s;
};
// With output commit each request waits for its checkpoint (~50-100 ms here): 150 requests
// outlast the kill. Without it a request can take a third of a millisecond: far more than
// the clients can finish before the kill, which comes sooner.
constexpr TrialShape kProtected{150, 1500, 2000, 60};
constexpr TrialShape kWithoutOutputCommit{20000, 500, 1000, 12};

struct Trial {
  HistoryVerdict verdict;
  std::string primary_log, secondary_log;
};

// One pair, kClients clients, one kill-primary at a random moment; the clients' verdict.
Trial RunTrial(const AgentPairOptions& options, const TrialShape& shape, std::mt19937& random) {
  Trial trial;
  auto pair = AgentPair::Start(options, "net");
  EXPECT_TRUE(pair.ok()) << pair.status();
  if (!pair.ok()) return trial;
  std::vector<ChildProcess> clients;
  std::vector<std::string> logs;
  auto spawn_client = [&](int id, int requests) -> bool {
    logs.push_back((*pair)->directory() + "/client-" + std::to_string(id) + ".jsonl");
    Result<ChildProcess> client =
        (*pair)->network()->SpawnServiceClient(id, requests, logs.back(), shape.client_deadline_s);
    EXPECT_TRUE(client.ok()) << client.status();
    if (client.ok()) clients.push_back(std::move(*client));
    return client.ok();
  };
  // One request first, so that the stalls measured below are the failover's, not the
  // first ARP exchange's (its kernel retry is a second).
  if (!spawn_client(kClients + 1, 1)) return trial;
  (void)clients.back().WaitForExit(Deadline::AfterMillis(20000));
  for (int id = 1; id <= kClients; ++id) {
    if (!spawn_client(id, shape.requests)) return trial;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(shape.kill_after_ms + random() % shape.kill_spread_ms));
  (*pair)->KillPrimary();
  for (ChildProcess& client : clients) (void)client.WaitForExit(Deadline::AfterMillis(1000 * (shape.client_deadline_s + 10)));
  Result<HistoryVerdict> verdict = CheckServiceHistory(logs);
  EXPECT_TRUE(verdict.ok()) << verdict.status();
  if (verdict.ok()) trial.verdict = std::move(*verdict);
  trial.primary_log = (*pair)->PrimaryLog();
  trial.secondary_log = (*pair)->SecondaryLog();
  return trial;
}

// The longest a busy client waited for an answer: the failover, as clients saw it (the
// warm-up client, which only waited for the first ARP exchange, is left out).
double LongestStallMs(const HistoryVerdict& verdict) {
  double longest = 0;
  for (const ClientHistory& client : verdict.clients) {
    if (client.client_id <= kClients) longest = std::max(longest, client.longest_stall_ms);
  }
  return longest;
}

TEST(NetworkFailoverTest, TenKillsKeepOneSerialHistoryAndEveryClientFinishes) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
  std::mt19937 random(std::random_device{}());
  AgentPairOptions options;
  options.network = true;
  for (int trial = 0; trial < 10; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    Trial outcome = RunTrial(options, kProtected, random);
    if (HasFailure()) break;
    const HistoryVerdict& verdict = outcome.verdict;
    EXPECT_TRUE(verdict.consistent) << verdict.Summary() << "\nsecondary log:\n" << outcome.secondary_log;
    EXPECT_TRUE(verdict.all_completed) << verdict.Summary() << "\nsecondary log:\n" << outcome.secondary_log;
    EXPECT_EQ(verdict.max_value, uint64_t{kClients} * kProtected.requests + 1) << verdict.Summary();
    std::printf("trial %d: longest client-visible stall across the failover %.0f ms; %s\n", trial,
                LongestStallMs(verdict), verdict.Summary().c_str());
    std::fflush(stdout);
    if (HasFailure()) break;
  }
}

TEST(NetworkFailoverTest, NegativeControlWithoutOutputCommitIsCaught) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
  std::mt19937 random(std::random_device{}());
  AgentPairOptions options;
  options.network = true;
  options.network_output_commit_off = true;
  int caught_in = -1;
  for (int trial = 0; trial < 10 && caught_in < 0; ++trial) {
    Trial outcome = RunTrial(options, kWithoutOutputCommit, random);
    if (HasFailure()) return;
    std::printf("negative control trial %d: %s\n", trial,
                outcome.verdict.consistent ? ("nothing caught: " + outcome.verdict.Summary()).c_str()
                                           : ("caught: " + outcome.verdict.violation).c_str());
    std::fflush(stdout);
    if (!outcome.verdict.consistent) caught_in = trial;
  }
  EXPECT_GE(caught_in, 0) << "with output commit off, no client saw a contradicted reply in 10 failovers: the check "
                             "has no teeth";
}

// The VM is protected again after a failover — its frames held by the new primary, whose
// relay is the promoted agent's — and a second kill, of that host, keeps the same history.
TEST(NetworkFailoverTest, ReprotectedVmKeepsOneSerialHistoryAcrossTwoKills) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
  AgentPairOptions options;
  options.network = true;
  options.separate_hosts = true;
  options.reprotect = true;
  auto started = AgentPair::Start(options, "netrp");
  ASSERT_TRUE(started.ok()) << started.status();
  AgentPair& pair = **started;
  std::vector<ChildProcess> clients;
  std::vector<std::string> logs;
  for (int id = 1; id <= kClients; ++id) {
    logs.push_back(pair.directory() + "/client-" + std::to_string(id) + ".jsonl");
    Result<ChildProcess> client = pair.network()->SpawnServiceClient(id, 1000000, logs.back(), /*deadline_s=*/40);
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(std::move(*client));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  Result<nlohmann::json> first = RunFtctlDrill("kill-primary", pair);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(pair.StartReplacementSecondary().ok());
  Result<nlohmann::json> reprotected = pair.WaitForReprotection(Deadline::AfterMillis(30000));
  ASSERT_TRUE(reprotected.ok()) << reprotected.status();
  // The re-protecting primary holds the guest's frames and releases them on ack.
  Result<nlohmann::json> before = control::AgentStatus(pair.secondary_dir(), Deadline::AfterMillis(1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  Result<nlohmann::json> after = control::AgentStatus(pair.secondary_dir(), Deadline::AfterMillis(1000));
  ASSERT_TRUE(before.ok() && after.ok());
  uint64_t released_before = (*before)["network"]["released_offset"].get<uint64_t>();
  uint64_t released_after = (*after)["network"]["released_offset"].get<uint64_t>();
  EXPECT_GT(released_after, released_before) << "no frames released through the re-protected VM's output commit: "
                                              << after->dump();
  std::printf("re-protected: %llu bytes of frames released on ack in 2 s\n",
              static_cast<unsigned long long>(released_after - released_before));
  Result<nlohmann::json> second = RunFtctlDrill("kill-primary", pair, pair.secondary_dir(), pair.replacement_dir());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)["outcome"], "secondary promoted") << pair.ReplacementLog();
  for (ChildProcess& client : clients) (void)client.WaitForExit(Deadline::AfterMillis(60000));
  Result<HistoryVerdict> verdict = CheckServiceHistory(logs);
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_TRUE(verdict->consistent) << verdict->Summary() << "\n" << pair.SecondaryLog();
  for (const ClientHistory& client : verdict->clients) {
    EXPECT_GT(client.requests_answered, 100u) << "client " << client.client_id << " made little progress";
  }
  std::printf("two kills with a re-protection between: %s\n", verdict->Summary().c_str());
}

}  // namespace
}  // namespace understudy::testing
