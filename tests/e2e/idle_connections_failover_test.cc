// A hostile neighbourhood must not delay a failover: with 200 idle TCP connections opened
// against the secondary's TLS port, and forged heartbeats (another key) sprayed at it, a
// SIGKILL of the primary is still detected and the standby promoted within the heartbeat
// budget plus one second, and the console stays continuous.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/unique_fd.h"
#include "failover/failover_config.h"
#include "failover/heartbeat.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

namespace understudy::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// host:port of a "tls://host:port" or "host:port" address.
std::pair<std::string, uint16_t> HostAndPort(std::string address) {
  size_t scheme = address.find("://");
  if (scheme != std::string::npos) address = address.substr(scheme + 3);
  size_t colon = address.rfind(':');
  return {address.substr(0, colon), static_cast<uint16_t>(std::stoi(address.substr(colon + 1)))};
}

TEST(IdleConnectionsFailoverTest, IdleConnectionsAndForgedHeartbeatsDoNotDelayPromotion) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  AgentPairOptions options;
  options.guest = {.pages = 64};
  auto pair = AgentPair::Start(options, "idleconn");
  ASSERT_TRUE(pair.ok()) << pair.status();
  Result<nlohmann::json> secondary = (*pair)->SecondaryStatus();
  ASSERT_TRUE(secondary.ok()) << secondary.status();
  auto [host, port] = HostAndPort((*secondary)["listen"].get<std::string>());
  std::string heartbeat_address = (*secondary)["heartbeat_address"].get<std::string>();
  // The pair's id as the agents derive it from the pair's name (AgentPair names the pair).
  Result<failover::FailoverConfig> same_pair = failover::FailoverConfig::FromJson({{"failover", {{"pair", "idleconn"}, {"arbiter", "none"}}}});
  ASSERT_TRUE(same_pair.ok()) << same_pair.status();

  // 200 connections that never say a word, kept open for the rest of the test. Non-blocking
  // connects: while it serves its primary the secondary accepts nobody, so beyond the listen
  // backlog they wait in the kernel — and all arrive at once when it returns to accepting.
  std::vector<UniqueFd> idle;
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(port);
  ASSERT_EQ(::inet_pton(AF_INET, host.c_str(), &target.sin_addr), 1);
  for (int i = 0; i < 200; ++i) {
    UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(socket.valid());
    int result = ::connect(socket.get(), reinterpret_cast<sockaddr*>(&target), sizeof(target));
    ASSERT_TRUE(result == 0 || errno == EINPROGRESS) << std::strerror(errno);
    idle.push_back(std::move(socket));
  }
  // A forger on the heartbeat path: right pair, wrong key.
  failover::HeartbeatAuth forged;
  forged.key.fill(0x66);
  auto forger = failover::Heartbeat::Start("127.0.0.1:0", heartbeat_address, same_pair->monitor.pair_id, 20ms, forged,
                                             nullptr);
  ASSERT_TRUE(forger.ok()) << forger.status();

  console::ConsoleFollower follower = (*pair)->Follower();
  CounterTranscript transcript;
  auto watch_until = Clock::now() + 1500ms;
  while (Clock::now() < watch_until) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
    if (line.ok()) transcript.Observe(*line);
  }
  uint64_t last_before_kill = transcript.last_number();
  Clock::time_point killed = Clock::now();
  (*pair)->KillPrimary();
  ASSERT_TRUE((*pair)->WaitForSecondaryState("promoted", Deadline::AfterMillis(20000)).ok()) << (*pair)->SecondaryLog();
  double promoted_ms = std::chrono::duration<double, std::milli>(Clock::now() - killed).count();
  while (transcript.last_number() <= last_before_kill + 5) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(10000));
    ASSERT_TRUE(line.ok()) << "no output after the promotion: " << line.status();
    transcript.Observe(*line);
  }
  Result<nlohmann::json> after = (*pair)->SecondaryStatus();
  ASSERT_TRUE(after.ok());
  double budget_ms = (*after)["heartbeat_budget_ms"].get<double>();
  std::printf("kill -> promoted %.0f ms with 200 idle connections and a forger (budget %.0f ms)\n", promoted_ms,
              budget_ms);
  EXPECT_LT(promoted_ms, budget_ms + 1000) << (*pair)->SecondaryLog();
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
  EXPECT_GT((*after)["heartbeat_rejected"].get<uint64_t>(), 0u) << "the forged heartbeats were not seen at all";
}

}  // namespace
}  // namespace understudy::testing
