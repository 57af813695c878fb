// The Linux guest running Redis (tests/guests/linux/build.sh), protected by ft-primary and
// ft-secondary under the TCG vehicle, its virtio-net NIC on a ClientNetwork bridge through the
// agents' taps (network output commit on). The real redis-cli, run in the clients' namespace,
// INCRs one counter over and over; the primary (QEMU and agent) is SIGKILLed after the 30th
// reply, and the replies must still be exactly 1, 2, ..., 100: nothing a client saw is taken
// back by the failover, and no increment is lost or applied twice.
//
// History: this test first failed every time — the promoted guest's kernel died on stale
// memory ("kernel BUG at net/core/skbuff.c:3090", a NULL hrtimer callback). The RAM-equality
// oracle (tests/e2e:ram_equality_test) traced it to QEMU 7.2's dirty-bitmap fast path under
// TCG; the vehicle's qemu/tcg/tcg-dirty-sync-fix.patch fixed it, and the guest now survives.
// One kill per run, and no negative control yet (issue 14 asks for ten and one).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/linux_guest.h"

namespace understudy::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kIncrements = 100;
constexpr int kKillAfterReplies = 30;
constexpr int kBootBudgetMs = 240000;
constexpr int kRedisCliBudgetMs = 60000;

// The real redis-cli in the clients' namespace.
Result<std::string> RedisCli(const ClientNetwork& network, const std::vector<std::string>& command,
                             const std::string& output) {
  return RunRedisCli(NetnsExec(network.namespace_name()), ClientNetwork::kGuestAddress, command, output,
                     Deadline::AfterMillis(kRedisCliBudgetMs));
}

TEST(LinuxGuestFailoverTest, RedisIncrementsStayOneSerialHistoryAcrossAKillPrimary) {
  Result<GuestAccelerator> accelerator = LinuxGuestAccelerator();
  if (!accelerator.ok()) {
    const char* forced = std::getenv("UNDERSTUDY_ACCEL");
    ASSERT_FALSE(forced && std::string(forced) == "tcg") << accelerator.status();
    GTEST_SKIP() << "skipped: " << accelerator.status();
  }
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);  // namespaces for the client network
  Result<LinuxGuestImage> image = FindLinuxGuestImage();
  ASSERT_TRUE(image.ok()) << image.status();

  LinuxGuestOptions guest;
  guest.guest_cidr = std::string(ClientNetwork::kGuestAddress) + "/24";
  guest.mac = ClientNetwork::kGuestMac;
  AgentPairOptions options;
  options.network = true;
  options.vm = LinuxGuestDefinition(*image, guest);
  // Diagnostics: `--test_env=UNDERSTUDY_LINUX_GUEST_TICK=1` has the guest print "tick N" every
  // second, which tells a hung promoted guest from one whose network is cut.
  if (std::getenv("UNDERSTUDY_LINUX_GUEST_TICK")) options.vm->append += " guest_tick=1";
  options.accelerator = *accelerator;
  const Clock::time_point started = Clock::now();
  Result<std::unique_ptr<AgentPair>> pair = AgentPair::Start(options, "linux");
  ASSERT_TRUE(pair.ok()) << pair.status();
  const double protected_s = std::chrono::duration<double>(Clock::now() - started).count();

  console::ConsoleFollower follower = (*pair)->Follower();
  const Deadline boot_deadline = Deadline::AfterMillis(kBootBudgetMs);
  std::vector<std::string> console_lines;
  while (console_lines.empty() || console_lines.back() != kLinuxGuestReadyLine) {
    Result<std::string> line = follower.ReadLine(boot_deadline);
    if (!line.ok()) {
      std::string seen;
      for (const std::string& l : console_lines) seen += "  " + l + "\n";
      Result<nlohmann::json> status = (*pair)->PrimaryStatus();
      FAIL() << line.status() << "; console so far:\n"
             << seen << "primary status: " << (status.ok() ? status->dump() : status.status().ToString())
             << "\nprimary log:\n"
             << (*pair)->PrimaryLog() << "\nsecondary log:\n"
             << (*pair)->SecondaryLog();
    }
    // The guest's tty turns "\n" into "\r\n"; the follower hands lines over as released.
    std::string text = *line;
    while (!text.empty() && (text.back() == '\r' || text.back() == '\n')) text.pop_back();
    console_lines.push_back(text);
  }
  const double ready_s = std::chrono::duration<double>(Clock::now() - started).count();
  ClientNetwork& network = *(*pair)->network();
  const std::string output = (*pair)->directory() + "/redis-cli.out";
  Result<std::string> pong = RedisCli(network, {"PING"}, output);
  ASSERT_TRUE(pong.ok()) << pong.status();
  ASSERT_EQ(*pong, "PONG");

  std::atomic<int> replies_seen{0};
  std::thread killer([&] {
    while (replies_seen.load() < kKillAfterReplies) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    (*pair)->KillPrimary();
  });
  std::vector<std::string> replies;
  std::vector<double> latencies_ms;
  Status failed = Status::Ok();
  for (int i = 0; i < kIncrements; ++i) {
    const Clock::time_point sent = Clock::now();
    Result<std::string> reply = RedisCli(network, {"INCR", "counter"}, output);
    if (!reply.ok()) {
      failed = reply.status().WithContext("INCR #" + std::to_string(i + 1));
      replies_seen = kKillAfterReplies;  // let the killer finish
      break;
    }
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    replies.push_back(*reply);
    replies_seen = i + 1;
  }
  killer.join();
  if (!failed.ok()) {
    Result<nlohmann::json> secondary = (*pair)->SecondaryStatus();
    std::printf("secondary status after the failure: %s\n",
                secondary.ok() ? secondary->dump().c_str() : secondary.status().ToString().c_str());
  }
  if (!failed.ok()) {
    std::string after;
    for (;;) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(3000));
      if (!line.ok()) break;
      after += *line;
    }
    // The promoted guest's console: a kernel oops here means the standby's state was not the
    // primary's (e.g. a page the checkpoint missed).
    std::printf("console after the failure:\n%s\n", after.c_str());
  }
  ASSERT_TRUE(failed.ok()) << failed << "\nprimary log:\n" << (*pair)->PrimaryLog() << "\nsecondary log:\n"
                           << (*pair)->SecondaryLog();
  for (int i = 0; i < kIncrements; ++i) {
    ASSERT_EQ(replies[i], std::to_string(i + 1)) << "INCR #" << i + 1 << " (the primary died after #"
                                                 << kKillAfterReplies << ")";
  }
  Result<std::string> value = RedisCli(network, {"GET", "counter"}, output);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::to_string(kIncrements));
  Result<nlohmann::json> promoted = (*pair)->SecondaryStatus();
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(promoted->value("state", ""), "promoted") << promoted->dump();

  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "Linux guest + Redis under %s: protected after %.1f s, 'redis ready' after %.1f s; %d INCRs with a "
      "kill-primary after #%d: latency p50 %.1f ms, max %.1f ms (the failover); secondary now %s\n",
      accelerator->name.c_str(), protected_s, ready_s, kIncrements, kKillAfterReplies, sorted[sorted.size() / 2],
      sorted.back(), promoted->dump().c_str());
}

}  // namespace
}  // namespace understudy::testing
