// The VmOwner without QEMU: a host built from a "promoted standby" whose serial console is a
// socket this test writes as the guest, and a secondary played through a fake channel. The
// rule under test: held output reaches the released log only through the controller's
// kReleaseUpTo, whatever else happens (epochs captured, a new secondary's hello, its acks).
#include "primary/vm_owner.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/registry.h>

#include "common/test_poll.h"
#include "primary/fake_secondary_channel.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {
namespace {

using failover::Action;
using failover::ActionKind;
using failover::Event;
using failover::EventKind;

bool Eventually(const std::function<bool()>& predicate) { return PollUntil(predicate, 5s, 1ms); }

class VmOwnerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartOwner(OwnerOptions()); }
  // Builds the owner of a fake promoted standby with `options` (name fields filled in).
  void StartOwner(OwnerOptions options) {
    if (owner_) owner_->Shutdown();
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    guest_serial_ = UniqueFd(pair[0]);
    PromotedStandby standby;
    standby.definition.name = "vm-under-test";
    standby.serial = UniqueFd(pair[1]);
    standby.released_console = &released_;
    standby.metrics = &registry_;
    Result<std::unique_ptr<VmHost>> host = VmHost::FromPromotedStandby(std::move(standby));
    ASSERT_TRUE(host.ok()) << host.status();
    options.config.vm.name = "vm-under-test";
    options.config.failover.name = "owner";
    Result<std::unique_ptr<VmOwner>> owner = VmOwner::Start(
        std::move(*host), std::move(options), [this](Event event) { Record(std::move(event)); }, /*alone=*/true);
    ASSERT_TRUE(owner.ok()) << owner.status();
    owner_ = std::move(*owner);
  }
  void TearDown() override {
    if (owner_) owner_->Shutdown();
  }

  void GuestPrints(const std::string& text) { ASSERT_EQ(::write(guest_serial_.get(), text.data(), text.size()), ssize_t(text.size())); }
  void Record(Event event) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Heartbeats are noise here, except one that says the pairing is over.
    if (event.kind != EventKind::kHeard || event.peer_says == failover::PeerSays::kAlone) events_.push_back(std::move(event));
  }
  std::optional<Event> Last(EventKind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto event = events_.rbegin(); event != events_.rend(); ++event) {
      if (event->kind == kind) return *event;
    }
    return std::nullopt;
  }
  std::string Released() {
    Result<std::string> bytes = released_.ReadFrom(0, 1 << 20, Deadline::Now());
    return bytes.ok() ? *bytes : "";
  }

  UniqueFd guest_serial_;
  console::ReleasedLog released_;
  prometheus::Registry registry_;
  std::unique_ptr<VmOwner> owner_;
  std::mutex mutex_;
  std::vector<Event> events_;
};

TEST_F(VmOwnerTest, OutputRunningAloneIsCapturedThenReleasedOnlyByReleaseUpTo) {
  GuestPrints("hello\n");
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kCaptured).has_value(); })) << "the owner never sealed an epoch";
  uint64_t epoch = Last(EventKind::kCaptured)->epoch;
  EXPECT_GE(epoch, 1u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(released_.end(), 0u) << "output left before the controller said so";
  owner_->Carry(Action{.kind = ActionKind::kReleaseUpTo, .epoch = epoch});
  EXPECT_EQ(Released(), "hello\n");
}

TEST_F(VmOwnerTest, ReleaseUpToAnEarlierEpochKeepsTheLaterOnesHeld) {
  GuestPrints("one\n");
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kCaptured).has_value(); }));
  uint64_t first = Last(EventKind::kCaptured)->epoch;
  GuestPrints("two\n");
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kCaptured)->epoch > first; }));
  owner_->Carry(Action{.kind = ActionKind::kReleaseUpTo, .epoch = first});
  EXPECT_EQ(Released(), "one\n");
  owner_->Carry(Action{.kind = ActionKind::kReleaseUpTo, .epoch = Last(EventKind::kCaptured)->epoch});
  EXPECT_EQ(Released(), "one\ntwo\n");
}

TEST_F(VmOwnerTest, ANewSecondarysHelloIsOfferedAndItsOutputIsHeldForIt) {
  auto peer = std::make_shared<Peer>();
  peer->Send(replication::EncodeHello({"new-secondary", "", "127.0.0.1:1", nullptr, 0}));
  owner_->Offer(std::make_unique<FakeChannel>(peer));
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kHello).has_value(); })) << "the hello never reached the controller";
  EXPECT_EQ(Last(EventKind::kHello)->peer, "new-secondary");
  EXPECT_NE(Last(EventKind::kHello)->peer_incarnation, 0u);
  // From the hello on, output waits for the new pairing: nothing is sealed (it would be in
  // no checkpoint), and nothing is released whatever the epochs say.
  GuestPrints("held for the new secondary\n");
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(Last(EventKind::kCaptured).has_value()) << "output sealed outside the new pairing";
  owner_->Carry(Action{.kind = ActionKind::kReleaseUpTo, .epoch = 1000});
  EXPECT_EQ(released_.end(), 0u);
}

// A pairing whose checkpoints cannot start (here: no QEMU to migrate) must not hold the
// guest's output for good: the owner tells the controller the pairing is over.
TEST_F(VmOwnerTest, APairingThatCannotStartCheckpointingTellsTheControllerItIsOver) {
  auto peer = std::make_shared<Peer>();
  peer->Send(replication::EncodeHello({"new-secondary", "", "127.0.0.1:1", nullptr, 0}));
  owner_->Offer(std::make_unique<FakeChannel>(peer));
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kHello).has_value(); }));
  const std::optional<Event> hello = Last(EventKind::kHello);
  EXPECT_FALSE(Last(EventKind::kHeard).has_value());
  owner_->Carry(Action{.kind = ActionKind::kPair, .peer = hello->peer, .peer_incarnation = hello->peer_incarnation, .revision = 7});
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kHeard).has_value(); }))
      << "the failed pairing was never reported over: its secondary's output would be held for good";
  EXPECT_EQ(Last(EventKind::kHeard)->peer_incarnation, hello->peer_incarnation);
}

// What a promoted secondary's owner role relies on: epochs continue after the ones its
// controller already released, and new secondaries get incarnations above the old pairing's.
TEST_F(VmOwnerTest, EpochsAndIncarnationsStartWhereTheOptionsSay) {
  OwnerOptions options;
  options.epochs_after = 294;
  options.first_incarnation = 9;
  StartOwner(std::move(options));
  GuestPrints("x\n");
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kCaptured).has_value(); }));
  EXPECT_EQ(Last(EventKind::kCaptured)->epoch, 295u);
  auto peer = std::make_shared<Peer>();
  peer->Send(replication::EncodeHello({"new-secondary", "", "127.0.0.1:1", nullptr, 0}));
  owner_->Offer(std::make_unique<FakeChannel>(peer));
  ASSERT_TRUE(Eventually([&] { return Last(EventKind::kHello).has_value(); }));
  EXPECT_EQ(Last(EventKind::kHello)->peer_incarnation, 9u);
}

// The value of `name`'s series for role "primary" in the registry (counter or histogram count);
// -1 when there is none.
double PrimarySeries(prometheus::Registry& registry, const std::string& name) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        if (label.name != "role" || label.value != "primary") continue;
        return family.type == prometheus::MetricType::Histogram ? static_cast<double>(metric.histogram.sample_count)
                                                                : metric.counter.value;
      }
    }
  }
  return -1;
}

// A primary that goes unprotected took the VM over: it counts in understudy_failovers_total
// and understudy_failover_duration_seconds, as the secondary's promotion does (the primary lost
// that count when the failover code moved into the controller).
TEST_F(VmOwnerTest, GoingUnprotectedCountsAsAFailover) {
  // Negative control: the series exist at zero, and other owner actions are no takeover.
  EXPECT_EQ(PrimarySeries(registry_, "understudy_failovers_total"), 0);
  EXPECT_EQ(PrimarySeries(registry_, "understudy_failover_duration_seconds"), 0);
  owner_->Carry(Action{.kind = ActionKind::kUnpair});
  owner_->Carry(Action{.kind = ActionKind::kReleaseUpTo, .epoch = 1});
  EXPECT_EQ(PrimarySeries(registry_, "understudy_failovers_total"), 0);
  owner_->Carry(Action{.kind = ActionKind::kGoUnprotected});
  EXPECT_EQ(PrimarySeries(registry_, "understudy_failovers_total"), 1);
  EXPECT_EQ(PrimarySeries(registry_, "understudy_failover_duration_seconds"), 1);
}

}  // namespace
}  // namespace understudy::primary
