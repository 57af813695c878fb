// Authenticated heartbeats: a forger without the key, or a replay of a dead peer's own
// datagrams, never makes the peer look alive; the configuration refuses unkeyed heartbeats
// that leave the host.
#include "failover/heartbeat.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "common/test_poll.h"
#include "common/test_scratch_dir.h"
#include "failover/failover_config.h"

namespace understudy::failover {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

HeartbeatAuth AuthWithKey(uint8_t fill) {
  HeartbeatAuth auth;
  auth.key.fill(fill);
  auth.max_echo_age = 150ms;
  return auth;
}

// Counts what makes `heard` fire, and when it last fired.
struct Listener {
  std::atomic<int> heard{0};
  std::atomic<int64_t> last_heard_ns{0};
  std::function<void()> Callback() {
    return [this] {
      ++heard;
      last_heard_ns = Clock::now().time_since_epoch().count();
    };
  }
  std::chrono::nanoseconds SinceLastHeard() const {
    return Clock::now().time_since_epoch() - std::chrono::nanoseconds(last_heard_ns.load());
  }
};

// A UDP socket on loopback that records every datagram it receives and forwards it — the
// attacker on the path, collecting material to replay.
class RecordingRelay {
 public:
  RecordingRelay() {
    socket_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(socket_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    ::getsockname(socket_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~RecordingRelay() {
    stopping_ = true;
    thread_.join();
    ::close(socket_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void ForwardTo(const std::string& address) {
    std::lock_guard<std::mutex> lock(mutex_);
    destination_ = address;
  }
  std::vector<std::string> Recorded() {
    std::lock_guard<std::mutex> lock(mutex_);
    return recorded_;
  }
  // Sends `datagram` to `address` as if it came from anyone.
  void SendTo(const std::string& address, const std::string& datagram) {
    sockaddr_in to = Parse(address);
    ::sendto(socket_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }

 private:
  static sockaddr_in Parse(const std::string& address) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
    return to;
  }
  void Loop() {
    char buffer[256];
    while (!stopping_) {
      pollfd entry{socket_, POLLIN, 0};
      if (::poll(&entry, 1, 10) <= 0) continue;
      ssize_t got = ::recv(socket_, buffer, sizeof(buffer), 0);
      if (got <= 0) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      recorded_.emplace_back(buffer, static_cast<size_t>(got));
      if (!destination_.empty()) SendTo(destination_, recorded_.back());
    }
  }
  int socket_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::string destination_;
  std::vector<std::string> recorded_;
};

TEST(HeartbeatAuthTest, PeersWithTheSameKeyHearEachOther) {
  Listener listener;
  auto a = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), listener.Callback());
  auto b = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->SetPeer((*b)->local_address());
  (*b)->SetPeer((*a)->local_address());
  // 15 datagrams take 300 ms at 20 ms; the deadline allows for a loaded sanitizer run (12 of
  // 15 arrived within 500 ms once). The rate is not this test's subject: authentication is.
  EXPECT_TRUE(PollUntil([&] { return (*a)->stats().received >= 15 && listener.heard.load() >= 10; }, 5000ms))
      << "received " << (*a)->stats().received << ", heard " << listener.heard.load();
  EXPECT_EQ((*a)->stats().rejected, 0u);
}

// Negative control of the oracle below: the same peer with another key is never heard.
TEST(HeartbeatAuthTest, APeerWithAnotherKeyIsNeverHeard) {
  Listener listener;
  auto a = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), listener.Callback());
  auto forger = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(2), nullptr);
  ASSERT_TRUE(a.ok() && forger.ok());
  (*a)->SetPeer((*forger)->local_address());
  (*forger)->SetPeer((*a)->local_address());
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(listener.heard.load(), 0);
  EXPECT_EQ((*a)->stats().received, 0u);
  EXPECT_GE((*a)->stats().rejected, 10u) << "forged datagrams must be counted as rejected";
}

TEST(HeartbeatAuthTest, ReplayingADeadPeersDatagramsDoesNotKeepItAlive) {
  Listener listener;
  RecordingRelay attacker;
  auto a = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), listener.Callback());
  auto b = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  // b's datagrams pass through the attacker, who keeps a copy of each.
  attacker.ForwardTo((*a)->local_address());
  (*b)->SetPeer(attacker.address());
  (*a)->SetPeer((*b)->local_address());
  std::this_thread::sleep_for(500ms);
  ASSERT_GE(listener.heard.load(), 10) << "the pair must work through the relay first";
  b->reset();  // the peer dies
  attacker.ForwardTo("");
  std::vector<std::string> recorded = attacker.Recorded();
  ASSERT_GE(recorded.size(), 20u);
  // Replay everything, old and newest, for longer than the failure budget.
  auto start = Clock::now();
  while (Clock::now() - start < 600ms) {
    for (const std::string& datagram : recorded) attacker.SendTo((*a)->local_address(), datagram);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(listener.SinceLastHeard(), 450ms) << "a replay made the dead peer look alive";
  EXPECT_GT((*a)->stats().rejected + (*a)->stats().stale, 100u);
}

TEST(HeartbeatAuthTest, ARestartedPeerIsHeardAgain) {
  Listener listener;
  auto a = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), listener.Callback());
  ASSERT_TRUE(a.ok());
  for (int incarnation = 0; incarnation < 2; ++incarnation) {
    auto b = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, AuthWithKey(1), nullptr);
    ASSERT_TRUE(b.ok());
    (*a)->SetPeer((*b)->local_address());
    (*b)->SetPeer((*a)->local_address());
    int before = listener.heard.load();
    std::this_thread::sleep_for(400ms);
    EXPECT_GE(listener.heard.load() - before, 8) << "incarnation " << incarnation;
  }
}

TEST(HeartbeatKeyConfigTest, HeartbeatsLeavingTheHostNeedAKeyFile) {
  nlohmann::json config = {{"name", "a"},
                           {"failover", {{"pair", "p"}, {"heartbeat_listen", "10.9.0.1:7401"}, {"arbiter", "http://10.9.0.9:2379"}}}};
  Result<FailoverConfig> refused = FailoverConfig::FromJson(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("heartbeat_key_file is required"), std::string::npos) << refused.status();

  Result<TestScratchDir> scratch = TestScratchDir::Create("hbkey");
  ASSERT_TRUE(scratch.ok());
  std::ofstream(scratch->File("short.key")) << "too short";
  config["failover"]["heartbeat_key_file"] = scratch->File("short.key");
  refused = FailoverConfig::FromJson(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("at least 32 are needed"), std::string::npos) << refused.status();

  std::ofstream(scratch->File("good.key")) << std::string(64, 'k');
  config["failover"]["heartbeat_key_file"] = scratch->File("good.key");
  Result<FailoverConfig> accepted = FailoverConfig::FromJson(config);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  std::ofstream(scratch->File("other.key")) << std::string(64, 'x');
  config["failover"]["heartbeat_key_file"] = scratch->File("other.key");
  Result<FailoverConfig> other = FailoverConfig::FromJson(config);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(accepted->monitor.heartbeat_key, other->monitor.heartbeat_key);
  EXPECT_EQ(accepted->monitor.pair_id, other->monitor.pair_id);
}

}  // namespace
}  // namespace understudy::failover
