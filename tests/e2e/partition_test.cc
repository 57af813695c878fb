// Partitions of a live protected pair whose primary, secondary and etcd are separate hosts
// (network namespaces; faults are cables pulled on the lab's switch, so packets vanish
// silently). Four cases from failover/SAFETY.md:
//   1. only the primary<->secondary links cut, both still reach etcd: exactly one side wins;
//   2. the primary isolated from everything (ftctl drill partition): the secondary promotes,
//      the primary never releases another byte;
//   3. the secondary isolated from everything: the primary goes unprotected;
//   4. etcd down, then the secondary killed: the primary releases nothing unacknowledged
//      until etcd returns, then goes unprotected;
//   5. (issue 15's split brain) the secondary cut from etcd while it pairs, its link restored,
//      then the hosts cut from each other, the secondary slower to notice: the primary goes
//      unprotected and the secondary must fence, never promote over that;
//   and: only the replication link cut (heartbeats still flow) is no failure at all: nobody
//   takes over, output waits, and the pair carries on once the cable is back;
//   and with a second heartbeat network (failover.second_heartbeat): heartbeat network A cut,
//   then the replication link too, is still no failover while path B carries; the negative
//   controls (B cut as well; or one heartbeat network only) are a failover.
// In every case the observer's sequence stays continuous, and the consoles the two agents
// released never disagree: one is a prefix of the other (output from one source at a time).
#include <gtest/gtest.h>

#include <thread>

#include "common/test_poll.h"
#include "drill/network_faults.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/background_observer.h"
#include "tests/harness/ftctl_drill.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

// Everything one agent's console socket has released, from offset 0.
std::string WholeConsole(const std::string& agent_dir) {
  console::ConsoleFollower follower({agent_dir + "/console.sock"});
  std::string text;
  Deadline give_up = Deadline::AfterMillis(5000);
  while (!give_up.Expired()) {
    Result<std::string> bytes = follower.Read(Deadline::AfterMillis(300));
    if (!bytes.ok()) break;
    text += *bytes;
  }
  return text;
}

// One history: whatever both agents released agrees byte for byte.
void ExpectOneSource(const AgentPair& pair) {
  std::string primary = WholeConsole(pair.primary_dir());
  std::string secondary = WholeConsole(pair.secondary_dir());
  size_t common = std::min(primary.size(), secondary.size());
  EXPECT_EQ(primary.substr(0, common), secondary.substr(0, common))
      << "the two agents released different output at the same offsets (split brain)";
  std::printf("  console released: primary %zu bytes, secondary %zu bytes\n", primary.size(), secondary.size());
}

std::string StateOf(const Result<json>& status) { return status.ok() ? status->value("state", "?") : "unreachable"; }

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
    AgentPairOptions options;
    options.separate_hosts = true;
    options.guest = {.pages = 64};
    Customize(options);
    auto pair = AgentPair::Start(options, "partition");
    ASSERT_TRUE(pair.ok()) << pair.status();
    pair_ = std::move(*pair);
    observer_ = std::make_unique<BackgroundObserver>(std::vector<std::string>{pair_->primary_dir(), pair_->secondary_dir()});
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  virtual void Customize(AgentPairOptions&) {}
  void TearDown() override {
    if (!pair_) return;
    (void)drill::Heal(pair_->lab()->topology());
    observer_->Stop();
  }
  const drill::LabTopology& lab() { return pair_->lab()->topology(); }
  // Waits until `predicate` holds or the deadline passes; returns whether it held.
  bool WaitFor(const std::function<bool()>& predicate, int millis) {
    return PollUntil(predicate, std::chrono::milliseconds(millis), std::chrono::milliseconds(20));
  }
  void ExpectContinuous() {
    observer_->Stop();
    EXPECT_FALSE(observer_->violation()) << *observer_->violation();
    EXPECT_GT(observer_->lines_observed(), 3u);
  }
  // The observer still sees new numbers.
  void ExpectOutputContinues() {
    uint64_t before = observer_->last_number();
    EXPECT_TRUE(WaitFor([&] { return observer_->last_number() > before + 2; }, 5000))
        << "output stopped at " << before;
  }

  // After `cut`: one side must decide within 10 s (the other fenced), the output go on, and
  // after healing the observer must have seen one continuous history from one source.
  void ExpectOneSideDecidesThenHeal(const char* cut);

  std::unique_ptr<AgentPair> pair_;
  std::unique_ptr<BackgroundObserver> observer_;
};

TEST_F(PartitionTest, CutBetweenTheAgentsOnlyExactlyOneSideWins) {
  ASSERT_TRUE(drill::CutBetween(lab(), "primary", "secondary").ok());
  bool decided = WaitFor(
      [&] {
        std::string primary = StateOf(pair_->PrimaryStatus()), secondary = StateOf(pair_->SecondaryStatus());
        return (primary == "unprotected" && secondary == "fenced") || (primary == "fenced" && secondary == "promoted");
      },
      10000);
  std::string primary = StateOf(pair_->PrimaryStatus()), secondary = StateOf(pair_->SecondaryStatus());
  std::printf("  outcome: primary %s, secondary %s\n", primary.c_str(), secondary.c_str());
  ASSERT_TRUE(decided) << "primary " << primary << ", secondary " << secondary << "\nprimary log:\n"
                       << pair_->PrimaryLog() << "\nsecondary log:\n" << pair_->SecondaryLog();
  ExpectOutputContinues();
  // Healing must not revive the loser.
  ASSERT_TRUE(drill::Heal(lab()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(StateOf(pair_->PrimaryStatus()), primary);
  EXPECT_EQ(StateOf(pair_->SecondaryStatus()), secondary);
  ExpectOutputContinues();
  ExpectContinuous();
  ExpectOneSource(*pair_);
}

TEST_F(PartitionTest, IsolatedPrimaryIsReplacedAndNeverReleasesAgain) {
  Result<json> report = RunFtctlDrill("partition", *pair_);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("  drill: %s\n", report->dump().c_str());
  EXPECT_TRUE((*report)["continuity_held"].get<bool>()) << (*report)["verdict"];
  EXPECT_EQ((*report)["outcome"], "secondary promoted");
  Result<json> primary = pair_->PrimaryStatus();
  ASSERT_TRUE(primary.ok());
  uint64_t released = (*primary)["console_released_bytes"].get<uint64_t>();
  // The drill healed the network; the old primary must have found the record moved.
  // Its arbiter requests were cut mid-way: each gives up at its own deadline before the next
  // read goes out over the healed network (the isolated secondary gets 10 s too, below).
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->PrimaryStatus()) == "fenced"; }, 10000))
      << "the healed primary is " << StateOf(pair_->PrimaryStatus()) << "\n" << pair_->PrimaryLog();
  ExpectOutputContinues();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(pair_->PrimaryStatus()->value("console_released_bytes", uint64_t{0}), released)
      << "the fenced primary released more output";
  std::string log = pair_->PrimaryLog();
  EXPECT_EQ(log.find("running unprotected"), std::string::npos) << log;
  EXPECT_NE(log.find("fenced:"), std::string::npos) << log;
  ExpectContinuous();
  ExpectOneSource(*pair_);
}

TEST_F(PartitionTest, IsolatedSecondaryLeavesThePrimaryUnprotected) {
  ASSERT_TRUE(drill::IsolateHost(lab(), "secondary").ok());
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->PrimaryStatus()) == "unprotected"; }, 10000))
      << pair_->PrimaryLog();
  EXPECT_NE(StateOf(pair_->SecondaryStatus()), "promoted");
  ExpectOutputContinues();
  ASSERT_TRUE(drill::Heal(lab()).ok());
  // Back on the network, the secondary finds the record taken and fences itself.
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->SecondaryStatus()) == "fenced"; }, 10000))
      << StateOf(pair_->SecondaryStatus()) << "\n" << pair_->SecondaryLog();
  ExpectOutputContinues();
  ExpectContinuous();
  ExpectOneSource(*pair_);
}

TEST_F(PartitionTest, OnlyTheReplicationLinkDownIsNoFailover) {
  ASSERT_TRUE(drill::UnplugPort(lab(), "primary", "replication").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  std::string primary = StateOf(pair_->PrimaryStatus()), secondary = StateOf(pair_->SecondaryStatus());
  std::printf("  with the replication link down: primary %s, secondary %s\n", primary.c_str(), secondary.c_str());
  EXPECT_TRUE(primary == "degraded" || primary == "protected") << primary;
  EXPECT_TRUE(secondary == "degraded" || secondary == "standby-ready") << secondary;
  ASSERT_TRUE(drill::Heal(lab()).ok());
  // TCP retransmits once the cable is back: checkpoints and output resume, same owner.
  ExpectOutputContinues();
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->PrimaryStatus()) == "protected"; }, 10000))
      << StateOf(pair_->PrimaryStatus());
  EXPECT_NE(StateOf(pair_->SecondaryStatus()), "promoted");
  ExpectContinuous();
  ExpectOneSource(*pair_);
}

TEST_F(PartitionTest, WithoutTheArbiterThePrimaryHoldsOutputUntilItReturns) {
  pair_->etcd()->Kill();
  pair_->KillSecondary();
  // The primary declares the secondary dead but cannot win the record: output stays held.
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->PrimaryStatus()) == "failing-over"; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  uint64_t held_at = observer_->last_number();
  uint64_t released = pair_->PrimaryStatus()->value("console_released_bytes", uint64_t{0});
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  EXPECT_EQ(observer_->last_number(), held_at) << "output was released without an ack or the record";
  EXPECT_EQ(pair_->PrimaryStatus()->value("console_released_bytes", uint64_t{0}), released);
  EXPECT_GT(pair_->PrimaryStatus()->value("console_held_bytes", uint64_t{0}), 0u) << "nothing held: is the guest printing?";
  EXPECT_EQ(StateOf(pair_->PrimaryStatus()), "failing-over");

  ASSERT_TRUE(pair_->etcd()->Restart().ok());
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->PrimaryStatus()) == "unprotected"; }, 10000)) << pair_->PrimaryLog();
  ExpectOutputContinues();
  ExpectContinuous();
}

// Both ends decided: one side serves, the other fenced.
bool Decided(const std::string& primary, const std::string& secondary) {
  return (primary == "unprotected" && secondary == "fenced") || (primary == "fenced" && secondary == "promoted");
}

void PartitionTest::ExpectOneSideDecidesThenHeal(const char* cut) {
  std::string primary, secondary;
  bool decided = WaitFor(
      [&] {
        primary = StateOf(pair_->PrimaryStatus());
        secondary = StateOf(pair_->SecondaryStatus());
        return Decided(primary, secondary);
      },
      10000);
  std::printf("  %s: primary %s, secondary %s\n", cut, primary.c_str(), secondary.c_str());
  ASSERT_TRUE(decided) << "primary " << primary << ", secondary " << secondary;
  ExpectOutputContinues();
  ASSERT_TRUE(drill::Heal(lab()).ok());
  ExpectContinuous();
  ExpectOneSource(*pair_);
}

// Neither side took the VM over or fenced: the pair still stands.
bool NobodyTookOver(const std::string& primary, const std::string& secondary) {
  return (primary == "protected" || primary == "degraded") && (secondary == "standby-ready" || secondary == "degraded");
}

// Negative control for TwoHeartbeatNetworksTest: with the one heartbeat network of this
// fixture, cutting it and the replication link leaves the peer silent on every path.
TEST_F(PartitionTest, WithOneHeartbeatNetworkCuttingItAndTheReplicationLinkIsAFailover) {
  EXPECT_EQ(pair_->PrimaryStatus()->value("heartbeat_redundant", true), false);
  ASSERT_TRUE(drill::UnplugPort(lab(), "primary", "heartbeat").ok());
  ASSERT_TRUE(drill::UnplugPort(lab(), "primary", "replication").ok());
  ExpectOneSideDecidesThenHeal("one heartbeat network, it and the replication link cut");
}

// The agents heartbeat over two networks: path A ("heartbeat") and path B ("second_heartbeat").
class TwoHeartbeatNetworksTest : public PartitionTest {
 protected:
  void Customize(AgentPairOptions& options) override {
    options.second_heartbeat = true;
    // With heartbeat network A and the replication link cut, path B's datagrams are the only
    // evidence of the peer, and on this 2-core test host (shared with builds) one heartbeat
    // thread descheduled for 150 ms (the default budget) is a verdict: it happened in 2 of 6
    // runs. The test is about which paths carry, not about the budget: 400 ms, as for a host
    // known to be loaded. The negative control below shows the verdict still comes.
    options.heartbeat_budget_ms = 400;
  }
};

TEST_F(TwoHeartbeatNetworksTest, CuttingHeartbeatNetworkAIsNoFailoverWhilePathBCarries) {
  Result<json> status = pair_->SecondaryStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->value("heartbeat_redundant", false), true);
  EXPECT_EQ(status->value("heartbeat_networks", 0), 2);
  // Many heartbeat budgets (150 ms) per stage: time enough for a wrong verdict to show.
  constexpr int kStageMs = 2000;
  std::string primary, secondary;
  auto settle = [&](const char* stage) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kStageMs));
    primary = StateOf(pair_->PrimaryStatus());
    secondary = StateOf(pair_->SecondaryStatus());
    std::printf("  %s: primary %s, secondary %s\n", stage, primary.c_str(), secondary.c_str());
    // What each heartbeat path heard so far (path B must keep counting).
    for (Result<json> agent : {pair_->PrimaryStatus(), pair_->SecondaryStatus()}) {
      if (!agent.ok()) continue;
      std::printf("    %s heard: path A %s (lost %s), path B %s (lost %s)\n", agent->value("role", "?").c_str(),
                  (*agent)["heartbeat_received"].dump().c_str(), (*agent)["heartbeat_lost"].dump().c_str(),
                  (*agent)["heartbeat_second_received"].dump().c_str(), (*agent)["heartbeat_second_lost"].dump().c_str());
    }
  };
  ASSERT_TRUE(drill::UnplugPort(lab(), "primary", "heartbeat").ok());
  settle("heartbeat network A cut");
  EXPECT_TRUE(NobodyTookOver(primary, secondary)) << "primary " << primary << ", secondary " << secondary;
  EXPECT_EQ(primary, "degraded") << "path A is silent: the primary must say so";
  ExpectOutputContinues();

  ASSERT_TRUE(drill::UnplugPort(lab(), "primary", "replication").ok());
  settle("heartbeat network A and the replication link cut");
  EXPECT_TRUE(NobodyTookOver(primary, secondary)) << "path B still hears the peer, yet: primary " << primary
                                                  << ", secondary " << secondary << "\nprimary log:\n"
                                                  << pair_->PrimaryLog() << "\nsecondary log:\n" << pair_->SecondaryLog();

  // Negative control in the same pair: cut path B too and the peer is silent on every path.
  ASSERT_TRUE(drill::UnplugPort(lab(), "primary", "second_heartbeat").ok());
  ExpectOneSideDecidesThenHeal("every path cut");
}

// The pair starts while the secondary cannot reach etcd: it learns the pairing's record
// revision from the primary's hello, never from a read of its own. Its failure budget is ten
// times the primary's, so of one cut the primary always learns first.
class PartitionAtPairingTest : public PartitionTest {
 protected:
  void Customize(AgentPairOptions& options) override {
    options.before_primary_starts = [](const drill::LabTopology& lab) { return drill::UnplugPort(lab, "secondary", "arbiter"); };
    options.heartbeat_budget_ms = std::nullopt;  // the primary's own 150 ms
    options.secondary_heartbeat_budget_ms = 1500;
  }
};

// Issue 15: a secondary that could not read the record at pairing used to remember no revision,
// so nothing fenced it while the primary was silent, and at its takeover it adopted whatever
// revision still named its primary, `unprotected` included: it won its swap and promoted while
// the primary kept releasing. Now it must fence (or, had it detected first, win and promote
// while the primary fences): never both sides serving.
TEST_F(PartitionAtPairingTest, SecondaryWithoutTheRecordAtPairingNeverPromotesOverAnUnprotectedPrimary) {
  ASSERT_TRUE(drill::PlugPort(lab(), "secondary", "arbiter").ok());
  EXPECT_TRUE(WaitFor([&] { return StateOf(pair_->SecondaryStatus()) == "standby-ready"; }, 5000))
      << StateOf(pair_->SecondaryStatus());
  ASSERT_TRUE(drill::CutBetween(lab(), "primary", "secondary").ok());
  bool split = false;
  std::string primary, secondary;
  auto decided = [&] {
    primary = StateOf(pair_->PrimaryStatus());
    secondary = StateOf(pair_->SecondaryStatus());
    split = split || (primary == "unprotected" && secondary == "promoted");
    return split || (primary == "unprotected" && secondary == "fenced") || (primary == "fenced" && secondary == "promoted");
  };
  bool settled = WaitFor(decided, 15000);
  std::printf("  outcome: primary %s, secondary %s\n", primary.c_str(), secondary.c_str());
  ASSERT_FALSE(split) << "split brain: the primary runs unprotected and the secondary promoted\nsecondary log:\n"
                      << pair_->SecondaryLog();
  ASSERT_TRUE(settled) << "primary " << primary << ", secondary " << secondary << "\nsecondary log:\n"
                       << pair_->SecondaryLog();
  ExpectOutputContinues();
  ASSERT_TRUE(drill::Heal(lab()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  decided();
  EXPECT_FALSE(split) << "split brain after healing: the loser came back";
  ExpectOutputContinues();
  ExpectContinuous();
  ExpectOneSource(*pair_);
}

}  // namespace
}  // namespace understudy::testing
