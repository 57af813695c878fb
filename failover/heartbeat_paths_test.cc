// Heartbeat paths A and B: each reports only its own Path when a second network is configured,
// and a single network stands for both (visibly: redundant() is false).
#include "failover/heartbeat_paths.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <thread>

namespace understudy::failover {
namespace {

using namespace std::chrono_literals;

// A UDP port on `host` that was free a moment ago (the kernel picks it).
std::string FreeAddress(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return host + ":" + std::to_string(ntohs(address.sin_port));
}

// How often each Path was reported.
struct Heard {
  std::array<std::atomic<int>, kPathCount> count{};
  std::function<void(Path)> Callback() {
    return [this](Path path) { ++count[static_cast<size_t>(path)]; };
  }
  int on(Path path) const { return count[static_cast<size_t>(path)].load(); }
};

HeartbeatPathsOptions Options(SecondHeartbeatPath second = {}) {
  HeartbeatPathsOptions options;
  options.listen = "127.0.0.1:0";
  options.second = std::move(second);
  options.pair_id = 42;
  options.interval = 10ms;
  options.auth.key.fill(7);
  options.auth.max_echo_age = 300ms;
  return options;
}

// Two agents' paths; path B (when `second`) on 127.0.0.2 <-> 127.0.0.3, a second "network".
struct Pair {
  explicit Pair(bool second) {
    SecondHeartbeatPath x_b, y_b;
    if (second) {
      x_b = {FreeAddress("127.0.0.2"), FreeAddress("127.0.0.3")};
      y_b = {x_b.peer, x_b.listen};
    }
    auto started_x = HeartbeatPaths::Start(Options(x_b), x_heard.Callback());
    auto started_y = HeartbeatPaths::Start(Options(y_b), y_heard.Callback());
    EXPECT_TRUE(started_x.ok()) << started_x.status();
    EXPECT_TRUE(started_y.ok()) << started_y.status();
    if (started_x.ok()) x = std::move(*started_x);
    if (started_y.ok()) y = std::move(*started_y);
  }
  // Path A's addresses are exchanged at pairing; until then (or when network A is cut) path
  // A carries nothing.
  void ConnectA() {
    x->SetPeer(y->address());
    y->SetPeer(x->address());
  }
  Heard x_heard, y_heard;
  std::unique_ptr<HeartbeatPaths> x, y;
};

// A listener that holds the heartbeat thread (here: 150 ms once) is counted as a hold-up and
// reported once, for the agent to log. (No quick-side control: on a loaded test machine an
// ordinary thread is itself held up now and then, which is what the count is for.)
TEST(HeartbeatPathsTest, AHeldUpHeartbeatThreadIsReportedOnce) {
  std::atomic<bool> hold_once{true};
  auto slow = HeartbeatPaths::Start(Options(), [&](Path) {
    if (hold_once.exchange(false)) std::this_thread::sleep_for(150ms);
  });
  auto quick = HeartbeatPaths::Start(Options(), [](Path) {});
  ASSERT_TRUE(slow.ok() && quick.ok());
  (*slow)->SetPeer((*quick)->address());
  (*quick)->SetPeer((*slow)->address());
  std::this_thread::sleep_for(400ms);
  EXPECT_GE((*slow)->stats().held_up, 1u);
  EXPECT_GE((*slow)->stats().longest_hold_up_ms, 140.0);
  const uint64_t counted = (*slow)->stats().held_up;
  std::string report = (*slow)->TakeHoldUpReport();
  EXPECT_NE(report.find("heartbeat path A held up"), std::string::npos) << report;
  std::string again = (*slow)->TakeHoldUpReport();
  if ((*slow)->stats().held_up == counted) {
    EXPECT_EQ(again, "") << "the same hold-ups reported twice";
  }
}

TEST(HeartbeatPathsTest, OneNetworkStandsForBothPathsAndSaysItIsNotRedundant) {
  Pair pair(/*second=*/false);
  ASSERT_TRUE(pair.x && pair.y);
  pair.ConnectA();
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(pair.x->redundant());
  EXPECT_EQ(pair.x->networks(), 1);
  EXPECT_EQ(pair.x->second_address(), "");
  EXPECT_GE(pair.x_heard.on(Path::kHeartbeatA), 10);
  EXPECT_EQ(pair.x_heard.on(Path::kHeartbeatB), pair.x_heard.on(Path::kHeartbeatA));
  EXPECT_EQ(pair.x_heard.on(Path::kReplication), 0);
}

TEST(HeartbeatPathsTest, WithASecondNetworkACutOfNetworkALeavesPathBHearing) {
  Pair pair(/*second=*/true);
  ASSERT_TRUE(pair.x && pair.y);
  EXPECT_TRUE(pair.x->redundant());
  EXPECT_EQ(pair.x->networks(), 2);
  // Network A "cut": path A never learns the peer's address, so nothing crosses it.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(pair.x_heard.on(Path::kHeartbeatA), 0);
  EXPECT_GE(pair.x_heard.on(Path::kHeartbeatB), 10) << "path B hears the peer on its own network";
  EXPECT_GE(pair.y_heard.on(Path::kHeartbeatB), 10);
  EXPECT_EQ(pair.x->stats().received, 0u);
  EXPECT_GE(pair.x->second_stats().received, 10u);
}

// Negative control for the test above: with one network, the same cut silences path B too —
// the oracle "path B still hears" does fail where there is no second network.
TEST(HeartbeatPathsTest, WithOneNetworkACutOfItSilencesBothPaths) {
  Pair pair(/*second=*/false);
  ASSERT_TRUE(pair.x && pair.y);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(pair.x_heard.on(Path::kHeartbeatA), 0);
  EXPECT_EQ(pair.x_heard.on(Path::kHeartbeatB), 0);
}

TEST(HeartbeatPathsTest, EachPathReportsOnlyItselfWhenBothCarry) {
  Pair pair(/*second=*/true);
  ASSERT_TRUE(pair.x && pair.y);
  pair.ConnectA();
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(pair.x_heard.on(Path::kHeartbeatA), 10);
  EXPECT_GE(pair.x_heard.on(Path::kHeartbeatB), 10);
  // Path A's datagrams are counted by path A's socket only: B's count is its own.
  EXPECT_EQ(static_cast<uint64_t>(pair.x_heard.on(Path::kHeartbeatA)), pair.x->stats().received);
}

// Path B authenticates under its own key: a sender on network B keyed like path A (a replay of
// path A's traffic, or a path-A-only peer) is never heard on B.
TEST(HeartbeatPathsTest, PathBRefusesDatagramsKeyedForPathA) {
  Heard heard;
  SecondHeartbeatPath b{FreeAddress("127.0.0.2"), FreeAddress("127.0.0.3")};
  auto paths = HeartbeatPaths::Start(Options(b), heard.Callback());
  ASSERT_TRUE(paths.ok()) << paths.status();
  HeartbeatPathsOptions a_keyed = Options();
  auto sender = Heartbeat::Start(b.peer, b.listen, a_keyed.pair_id, 10ms, a_keyed.auth, nullptr);
  ASSERT_TRUE(sender.ok()) << sender.status();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(heard.on(Path::kHeartbeatB), 0);
  EXPECT_GE((*paths)->second_stats().rejected, 10u);

  // Negative control: the same sender keyed with path B's key is heard.
  sender->reset();
  HeartbeatAuth b_keyed = a_keyed.auth;
  b_keyed.key = SecondPathKey(a_keyed.auth.key);
  sender = Heartbeat::Start(b.peer, b.listen, a_keyed.pair_id, 10ms, b_keyed, nullptr);
  ASSERT_TRUE(sender.ok()) << sender.status();
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(heard.on(Path::kHeartbeatB), 5);
}

TEST(HeartbeatPathsTest, AnUnbindableSecondPathIsAnErrorNamingTheField) {
  Heard heard;
  auto paths = HeartbeatPaths::Start(Options({"192.0.2.1:7401", "192.0.2.2:7401"}), heard.Callback());
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.status().message().find("failover.second_heartbeat"), std::string::npos) << paths.status();
}

}  // namespace
}  // namespace understudy::failover
