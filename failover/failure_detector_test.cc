#include "failover/failure_detector.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "failover/heartbeat.h"

namespace understudy::failover {
namespace {

using namespace std::chrono_literals;
using Clock = FailureDetector::Clock;

TEST(FailureDetectorTest, VerdictsFollowTheBudgetOnEveryPath) {
  FailureDetector detector(150ms);
  Clock::time_point t0{};
  EXPECT_EQ(detector.Verdict(t0), PeerVerdict::kUnknown);
  detector.Heard(HeartbeatPath::kUdp, t0);
  detector.Heard(HeartbeatPath::kChannel, t0);
  EXPECT_EQ(detector.Verdict(t0 + 100ms), PeerVerdict::kAlive);
  EXPECT_EQ(detector.Verdict(t0 + 150ms), PeerVerdict::kAlive);
  EXPECT_EQ(detector.Verdict(t0 + 151ms), PeerVerdict::kDead);
}

TEST(FailureDetectorTest, ALocalStallIsNotThePeersSilence) {
  using namespace std::chrono_literals;
  FailureDetector detector(150ms);
  auto t0 = FailureDetector::Clock::time_point{} + 1s;
  detector.Heard(HeartbeatPath::kUdp, t0);
  detector.Heard(HeartbeatPath::kChannel, t0);
  EXPECT_EQ(detector.Verdict(t0 + 250ms), PeerVerdict::kDead) << "unforgiven, 250 ms of silence is death";
  // This host did not run for 200 ms of those: only 50 ms count.
  detector.ForgiveLocalStall(200ms);
  EXPECT_EQ(detector.Verdict(t0 + 250ms), PeerVerdict::kAlive);
  // Forgiveness only delays: silence that goes on is still death, 150 ms later than before.
  EXPECT_EQ(detector.Verdict(t0 + 351ms), PeerVerdict::kDead);
}

TEST(FailureDetectorTest, OnlyTheCheckpointLinkSilentIsLinkDownNotDead) {
  FailureDetector detector(150ms);
  Clock::time_point t0{};
  detector.Heard(HeartbeatPath::kChannel, t0);
  for (int ms = 0; ms <= 1000; ms += 20) detector.Heard(HeartbeatPath::kUdp, t0 + std::chrono::milliseconds(ms));
  EXPECT_EQ(detector.Verdict(t0 + 1000ms), PeerVerdict::kLinkDown);
  detector.Heard(HeartbeatPath::kChannel, t0 + 1000ms);
  EXPECT_EQ(detector.Verdict(t0 + 1000ms), PeerVerdict::kAlive);
}

TEST(FailureDetectorTest, OnlyTheUdpPathSilentIsDegraded) {
  FailureDetector detector(150ms);
  Clock::time_point t0{};
  detector.Heard(HeartbeatPath::kUdp, t0);
  detector.Heard(HeartbeatPath::kChannel, t0 + 500ms);
  EXPECT_EQ(detector.Verdict(t0 + 500ms), PeerVerdict::kDegraded);
  EXPECT_EQ(*detector.Silence(t0 + 600ms), std::chrono::duration_cast<Clock::duration>(100ms));
}

// Regression (issue 16): the peer's heartbeat address (from its hello) was parsed with
// std::stoul on the heartbeat thread: "127.0.0.1:x" threw there and terminated the agent.
TEST(HeartbeatTest, AMalformedPeerAddressSendsNothingAndDoesNotCrash) {
  EXPECT_FALSE(Heartbeat::Start("127.0.0.1:x", "", 42, 20ms, HeartbeatAuth{}, nullptr).ok());
  EXPECT_FALSE(Heartbeat::Start("127.0.0.1:70000", "", 42, 20ms, HeartbeatAuth{}, nullptr).ok());
  auto heartbeat = Heartbeat::Start("127.0.0.1:0", "127.0.0.1:x", 42, 20ms, HeartbeatAuth{}, nullptr);
  ASSERT_TRUE(heartbeat.ok()) << heartbeat.status();
  (*heartbeat)->SetPeer("127.0.0.1:99999999999999999999");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ((*heartbeat)->stats().sent, 0u);
  // The control: a valid peer gets datagrams from the same object.
  auto peer = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, HeartbeatAuth{}, nullptr);
  ASSERT_TRUE(peer.ok());
  (*heartbeat)->SetPeer((*peer)->local_address());
  std::this_thread::sleep_for(100ms);
  EXPECT_GT((*heartbeat)->stats().sent, 0u);
}

// Real UDP heartbeats at 20 ms on loopback: when one side falls silent, the other declares it
// dead within the 150 ms budget plus one polling step.
TEST(HeartbeatTest, SilenceIsDetectedWithinTheBudget) {
  std::mutex mutex;
  FailureDetector detector(150ms);
  HeartbeatAuth auth;
  auth.key.fill(0x5a);
  auto a = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, auth, [&] {
    std::lock_guard<std::mutex> lock(mutex);
    detector.Heard(HeartbeatPath::kUdp, Clock::now());
    detector.Heard(HeartbeatPath::kChannel, Clock::now());
  });
  auto b = Heartbeat::Start("127.0.0.1:0", "", 42, 20ms, auth, nullptr);
  auto stranger = Heartbeat::Start("127.0.0.1:0", "", 7, 20ms, auth, nullptr);
  ASSERT_TRUE(a.ok() && b.ok() && stranger.ok());
  (*a)->SetPeer((*b)->local_address());
  (*b)->SetPeer((*a)->local_address());
  (*stranger)->SetPeer((*a)->local_address());
  std::this_thread::sleep_for(500ms);
  {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(detector.Verdict(Clock::now()), PeerVerdict::kAlive);
  }
  HeartbeatStats stats = (*a)->stats();
  EXPECT_GE(stats.received, 15u);
  EXPECT_GT(stats.rejected, 0u) << "datagrams of another pair must be refused";
  EXPECT_GT(stats.smoothed_rtt_ms, 0.0);
  EXPECT_LT(stats.smoothed_rtt_ms, 20.0) << "the echo's hold time must be subtracted";

  (*b)->Pause(true);
  auto silenced = Clock::now();
  Clock::time_point declared;
  for (;;) {
    std::this_thread::sleep_for(1ms);
    std::lock_guard<std::mutex> lock(mutex);
    if (detector.Verdict(Clock::now()) == PeerVerdict::kDead) {
      declared = Clock::now();
      break;
    }
  }
  auto detection = std::chrono::duration_cast<std::chrono::milliseconds>(declared - silenced);
  std::printf("declared dead %lld ms after the peer fell silent (budget 150 ms, interval 20 ms)\n",
              static_cast<long long>(detection.count()));
  EXPECT_GE(detection, 120ms);  // the last datagram may have left up to one interval before the pause
  EXPECT_LE(detection, 200ms);
}

}  // namespace
}  // namespace understudy::failover
