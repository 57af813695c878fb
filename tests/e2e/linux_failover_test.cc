// A real Linux VM running a real service, protected end to end: the Linux guest (Debian's
// kernel and Redis, tests/guests/linux/build.sh) under the TCG vehicle, its virtio-net NIC on
// a client network through the agents' taps. Three clients run the real redis-cli, each
// INCRing its own key on a fresh connection per request; each trial SIGKILLs the primary (QEMU
// and agent) at a random moment while they are busy. Every client's replies must be exactly
// 1, 2, 3, ... and each key must end at its last reply (tests/harness/incr_history.h): nothing
// a client saw is taken back, no increment is lost or applied twice, and no request fails.
//
// The negative control turns network output commit off (frames leave at once, before their
// checkpoint is acked): a reply from state the failover then rolls back reaches a client, whose
// next INCR repeats a count — the oracle must catch that in at least one of ten kills.
//
// Each trial starts a fresh pair (~10 s to protected and "redis ready" under TCG here), which
// keeps the trials independent; the whole test is ~3-4 min on a quiet 2-core machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "tests/harness/linux_guest_pair.h"
#include "tests/harness/redis_clients.h"

namespace understudy::testing {
namespace {

constexpr int kClients = 3;
constexpr int kTrials = 10;

// Skips (counted, with the reason) only where the pair cannot run at all; a missing vehicle or
// guest image is a failure when the suite was told to use TCG (quickstart.sh builds both).
#define REQUIRE_LINUX_GUEST_PAIR()                                                              \
  do {                                                                                          \
    UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);                                     \
    Result<GuestAccelerator> linux_accelerator = LinuxGuestAccelerator();                       \
    if (!linux_accelerator.ok()) {                                                              \
      const char* forced = std::getenv("UNDERSTUDY_ACCEL");                                     \
      ASSERT_FALSE(forced && std::string(forced) == "tcg") << linux_accelerator.status();       \
      GTEST_SKIP() << "skipped: " << linux_accelerator.status();                                \
    }                                                                                           \
  } while (0)

struct TrialResult {
  IncrVerdict verdict;
  double promotion_ms = -1;  // the secondary's own measure: decision to standby running
  double killed_at_s = 0;    // after the clients started
  std::string secondary_state;
  std::string diagnostics;   // logs, when something went wrong
};

struct TrialShape {
  uint64_t requests_per_client;  // 0: until some replies after the kill (negative control)
  uint64_t kill_after_min;       // replies, all clients, before the kill: at least ...
  uint64_t kill_after_spread;    // ... plus up to this many, at random
};
// With output commit each INCR waits for two checkpoints (the SYN-ACK's and the reply's).
constexpr TrialShape kProtected{40, 10, 70};
constexpr TrialShape kWithoutOutputCommit{0, 20, 40};
constexpr uint64_t kRepliesAfterKillWithoutCommit = 15;

Result<TrialResult> RunTrial(int trial, bool output_commit_off, const TrialShape& shape, std::mt19937& random) {
  AgentPairOptions options;
  options.network_output_commit_off = output_commit_off;
  UNDERSTUDY_ASSIGN_OR_RETURN(LinuxGuestPair linux,
                              StartLinuxGuestPair(options, (output_commit_off ? "lxneg" : "lx") + std::to_string(trial)));
  AgentPair& pair = *linux.pair;
  RedisClientsOptions clients_options;
  clients_options.clients = kClients;
  clients_options.requests_per_client = shape.requests_per_client;
  clients_options.launcher = linux.ClientLauncher();
  clients_options.host = ClientNetwork::kGuestAddress;
  clients_options.scratch_dir = pair.directory();
  clients_options.stop_at_first_unanswered = !output_commit_off;
  clients_options.request_budget_ms = output_commit_off ? 5000 : 30000;
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<RedisIncrClients> clients = RedisIncrClients::Start(clients_options);
  const uint64_t kill_after = shape.kill_after_min + random() % shape.kill_after_spread;
  const Deadline kill_deadline = Deadline::AfterMillis(60000);
  while (clients->replies() < kill_after && !kill_deadline.Expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  TrialResult result;
  if (clients->replies() < kill_after) {
    clients->Stop();
    clients->Finish();
    return Status::DeadlineExceeded("the clients got only " + std::to_string(clients->replies()) + " replies in 60 s: " +
                                    CheckIncrHistory(clients->Logs(), {}).Summary());
  }
  result.killed_at_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  pair.KillPrimary();
  if (shape.requests_per_client == 0) {
    const uint64_t target = clients->replies() + kRepliesAfterKillWithoutCommit;
    const Deadline enough = Deadline::AfterMillis(30000);
    while (clients->replies() < target && !enough.Expired()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    clients->Stop();
  }
  clients->Finish();
  Status promoted = pair.WaitForSecondaryState("promoted", Deadline::AfterMillis(10000));
  Result<std::map<std::string, std::string>> values = clients->FinalValues(Deadline::AfterMillis(30000));
  result.verdict = CheckIncrHistory(clients->Logs(), values.ok() ? *values : std::map<std::string, std::string>{});
  Result<nlohmann::json> status = pair.SecondaryStatus();
  if (status.ok()) {
    result.secondary_state = status->value("state", "?");
    if ((*status)["promotion_ms"].is_number()) result.promotion_ms = (*status)["promotion_ms"].get<double>();
  }
  if (!values.ok()) {  // the final values are part of the verdict: not having them fails the trial
    result.verdict.unanswered += 1;
    result.verdict.first_error = "GET: " + values.status().ToString();
  }
  if (!promoted.ok() || !result.verdict.consistent || result.verdict.unanswered > 0) {
    result.diagnostics = "secondary: " + promoted.ToString() + "\nprimary log:\n" + pair.PrimaryLog() +
                         "\nsecondary log:\n" + pair.SecondaryLog();
  }
  return result;
}

TEST(LinuxFailoverTest, TenKillsWithRedisClientsKeepOneSerialHistory) {
  REQUIRE_LINUX_GUEST_PAIR();
  std::mt19937 random(std::random_device{}());
  std::vector<double> promotions;
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const auto started = std::chrono::steady_clock::now();
    Result<TrialResult> result = RunTrial(trial, /*output_commit_off=*/false, kProtected, random);
    ASSERT_TRUE(result.ok()) << result.status();
    const IncrVerdict& verdict = result->verdict;
    std::printf("trial %d: killed %.1f s into the clients' run; promotion %.1f ms; %s (trial %.1f s)\n", trial,
                result->killed_at_s, result->promotion_ms, verdict.Summary().c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    std::fflush(stdout);
    EXPECT_TRUE(verdict.consistent) << verdict.Summary() << "\n" << result->diagnostics;
    EXPECT_EQ(verdict.unanswered, 0u) << verdict.Summary() << "\n" << result->diagnostics;
    EXPECT_EQ(verdict.replies, uint64_t{kClients} * kProtected.requests_per_client) << verdict.Summary();
    EXPECT_EQ(result->secondary_state, "promoted") << result->diagnostics;
    if (HasFailure()) break;
    promotions.push_back(result->promotion_ms);
  }
  if (!promotions.empty()) {
    std::sort(promotions.begin(), promotions.end());
    std::printf("%zu kill-primary trials under TCG: promotion min %.1f ms, median %.1f ms, max %.1f ms\n",
                promotions.size(), promotions.front(), promotions[promotions.size() / 2], promotions.back());
  }
}

TEST(LinuxFailoverTest, NegativeControlWithoutOutputCommitIsCaught) {
  REQUIRE_LINUX_GUEST_PAIR();
  std::mt19937 random(std::random_device{}());
  int caught_in = -1;
  for (int trial = 0; trial < kTrials && caught_in < 0; ++trial) {
    Result<TrialResult> result = RunTrial(trial, /*output_commit_off=*/true, kWithoutOutputCommit, random);
    ASSERT_TRUE(result.ok()) << result.status();
    std::printf("negative control trial %d: killed %.1f s in; %s: %s\n", trial, result->killed_at_s,
                result->verdict.consistent ? "nothing caught" : "caught", result->verdict.Summary().c_str());
    std::fflush(stdout);
    if (!result->verdict.consistent) caught_in = trial;
  }
  EXPECT_GE(caught_in, 0) << "with output commit off, no client saw a rolled-back reply in " << kTrials
                          << " failovers: the oracle has no teeth";
}

}  // namespace
}  // namespace understudy::testing
