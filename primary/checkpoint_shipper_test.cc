// The shipper against a fake secondary (a Channel whose peer is this test): acks release
// exactly the output of epochs that were shipped.
#include "primary/checkpoint_shipper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "common/test_poll.h"
#include "console/released_log.h"
#include "primary/fake_secondary_channel.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {
namespace {

using namespace std::chrono_literals;

EpochCapture Capture(uint64_t epoch, OutputBuffer& console) {
  EpochCapture capture;
  capture.epoch = epoch;
  capture.stopped_at = std::chrono::steady_clock::now();
  if (epoch == 1) capture.ram_blocks = checkpoint::RamBlockList{{"pc.ram", 64u << 10, std::nullopt}};
  capture.console_output = console.Seal(epoch);
  return capture;
}

bool Eventually(const std::function<bool()>& predicate) { return PollUntil(predicate, 5s, 1ms); }

// A shipper whose epoch 1 (console output "one\n", 4 bytes) was shipped and not yet acked.
class ShipperWithEpochOneInFlight : public ::testing::Test {
 protected:
  void SetUp() override {
    console.Append("one\n");
    shipper.Submit(Capture(1, console));
    ASSERT_TRUE(peer->WaitForSent(1));
  }
  void TearDown() override { shipper.Stop(/*goodbye=*/false); }

  std::shared_ptr<Peer> peer = std::make_shared<Peer>();
  OutputBuffer console{checkpoint::OutputStream::kConsole};
  console::ReleasedLog released;
  CheckpointShipper shipper{std::make_unique<FakeChannel>(peer), console, released, ShipperOptions{}};
};

TEST_F(ShipperWithEpochOneInFlight, AnAckForAnEpochNeverShippedIsRefusedAndReleasesNothing) {
  // Epoch 2 is captured (its output sealed) but never handed to the shipper.
  console.Append("two\n");
  EpochCapture never_shipped = Capture(2, console);

  // The control: acking the shipped epoch releases its output.
  peer->Send(replication::EncodeAck(1));
  ASSERT_TRUE(Eventually([&] { return released.end() == 4; })) << released.end();
  EXPECT_EQ(shipper.stats().acked_epoch, 1u);

  // A repeat of an old ack is harmless.
  peer->Send(replication::EncodeAck(1));
  // The refusal: epoch 2 was never shipped.
  peer->Send(replication::EncodeAck(2));
  ASSERT_TRUE(Eventually([&] { return shipper.stats().secondary_lost; }));
  ShipperStats stats = shipper.stats();
  EXPECT_NE(stats.last_error.find("acknowledged epoch 2, which was never shipped"), std::string::npos)
      << stats.last_error;
  EXPECT_EQ(stats.acked_epoch, 1u);
  EXPECT_EQ(released.end(), 4u) << "epoch 2's output was released without being shipped";
  EXPECT_EQ(console.held_bytes(), 4u);
}

TEST_F(ShipperWithEpochOneInFlight, AnAckFarAheadIsRefusedToo) {
  peer->Send(replication::EncodeAck(UINT64_MAX));
  ASSERT_TRUE(Eventually([&] { return shipper.stats().secondary_lost; }));
  EXPECT_EQ(shipper.stats().acked_epoch, 0u);
  EXPECT_EQ(released.end(), 0u);
}

TEST_F(ShipperWithEpochOneInFlight, AnAckInFlightWhenThePrimaryWentUnprotectedChangesNothing) {
  shipper.GoUnprotected();  // releases epoch 1's output and forgets it was in flight
  EXPECT_EQ(released.end(), 4u);
  peer->Send(replication::EncodeAck(1));  // the secondary's ack, already on its way
  std::this_thread::sleep_for(200ms);  // (without the fix the ack is refused within ~1 ms)
  ShipperStats stats = shipper.stats();
  EXPECT_FALSE(stats.secondary_lost) << "a late ack after going unprotected counted as a lying secondary: "
                                     << stats.last_error;
  EXPECT_TRUE(stats.last_error.empty()) << stats.last_error;
  EXPECT_EQ(released.end(), 4u);
}

// A shipper's surroundings: the fake secondary, the guest's console and the released log.
struct ShipperRig {
  ShipperOptions options;
  std::shared_ptr<Peer> peer = std::make_shared<Peer>();
  OutputBuffer console{checkpoint::OutputStream::kConsole};
  console::ReleasedLog released{64u << 20};
  std::vector<std::string> crossed;  // on_cap_crossed's reports
};

// A lost secondary never gets another checkpoint on this channel: the owner is told once, so it
// can end the pairing instead of holding output for good while heartbeats still arrive.
TEST(CheckpointShipperLostTest, TheOwnerIsToldOnceThatTheSecondaryIsLost) {
  ShipperRig c;
  std::atomic<int> told{0};
  c.options.on_lost = [&](const Status& why) {
    EXPECT_NE(why.message().find("never shipped"), std::string::npos) << why;
    told.fetch_add(1);
  };
  CheckpointShipper shipper(std::make_unique<FakeChannel>(c.peer), c.console, c.released, c.options);
  c.console.Append("one\n");
  shipper.Submit(Capture(1, c.console));
  ASSERT_TRUE(c.peer->WaitForSent(1));
  c.peer->Send(replication::EncodeAck(1));  // the control: a true ack loses nothing
  ASSERT_TRUE(Eventually([&] { return shipper.stats().acked_epoch == 1; }));
  EXPECT_EQ(told.load(), 0);
  c.peer->Send(replication::EncodeAck(5));
  ASSERT_TRUE(Eventually([&] { return told.load() == 1; })) << "the owner was never told";
  // A later failure (here: the next capture cannot be shipped) tells nobody again.
  c.console.Append("two\n");
  shipper.Submit(Capture(2, c.console));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(told.load(), 1);
  shipper.Stop(/*goodbye=*/false);
}

// Under a PairController (releases_output off) the shipper reports acks and releases
// nothing itself: not on an ack, not when going unprotected. The owner releases on the
// controller's kReleaseUpTo (vm_owner_test).
TEST(CheckpointShipperUnderAController, AnAckIsReportedAndReleasesNothing) {
  auto peer = std::make_shared<Peer>();
  OutputBuffer console{checkpoint::OutputStream::kConsole};
  console::ReleasedLog released;
  std::atomic<uint64_t> reported{0};
  ShipperOptions options;
  options.releases_output = false;
  options.on_acked = [&](uint64_t epoch, std::chrono::duration<double>) { reported.store(epoch); };
  CheckpointShipper shipper{std::make_unique<FakeChannel>(peer), console, released, options};
  console.Append("one\n");
  shipper.Submit(Capture(1, console));
  ASSERT_TRUE(peer->WaitForSent(1));
  peer->Send(replication::EncodeAck(1));
  ASSERT_TRUE(Eventually([&] { return reported.load() == 1; })) << "the ack was not reported";
  EXPECT_EQ(shipper.stats().acked_epoch, 1u);
  shipper.GoUnprotected();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(released.end(), 0u) << "the shipper released output by itself";
  EXPECT_EQ(console.held_bytes(), 4u);
  shipper.Stop(/*goodbye=*/false);
}

// Bounded memory in bytes (issue 16, item 5): crossing a cap is the pair event — the
// secondary counts as lost, nothing is released until the primary goes unprotected — never a
// wedge and never an early release.
TEST(CheckpointShipperCapsTest, HeldOutputOverItsCapIsThePairEventAndGoingUnprotectedReleasesIt) {
  for (size_t held : {size_t{512} << 10, size_t{2} << 20}) {  // under the 1 MiB cap (the control), over it
    SCOPED_TRACE(held);
    ShipperRig c;
    c.options.caps.held_output_bytes = 1u << 20;
    c.options.on_cap_crossed = [&](const CapCrossing& crossing) { c.crossed.push_back(crossing.cap); };
    CheckpointShipper shipper(std::make_unique<FakeChannel>(c.peer), c.console, c.released, c.options);
    c.console.Append("one\n");
    shipper.Submit(Capture(1, c.console));
    ASSERT_TRUE(c.peer->WaitForSent(1));
    c.peer->Send(replication::EncodeAck(1));
    ASSERT_TRUE(Eventually([&] { return c.released.end() == 4; }));
    // The secondary stalls (no more acks) while the guest talks.
    c.console.Append(std::string(held, 'x'));
    EXPECT_TRUE(shipper.WaitForRoom(Deadline::AfterMillis(100)).ok());
    ShipperStats stats = shipper.stats();
    if (held < (1u << 20)) {
      EXPECT_FALSE(stats.over_cap) << stats.last_error;
      EXPECT_TRUE(c.crossed.empty());
      shipper.Stop(/*goodbye=*/false);
      continue;
    }
    ASSERT_TRUE(stats.over_cap);
    EXPECT_EQ(stats.cap_crossed, "held_output");
    EXPECT_TRUE(stats.secondary_lost);
    EXPECT_NE(stats.last_error.find("held output: " + std::to_string(held) + " bytes"), std::string::npos)
        << stats.last_error;
    EXPECT_EQ(c.crossed, std::vector<std::string>{"held_output"});
    EXPECT_EQ(c.released.end(), 4u) << "output went out before the record was won";
    EXPECT_FALSE(c.peer->closed);
    // The primary won the record: everything held goes out, and the secondary hears goodbye.
    shipper.GoUnprotected();
    EXPECT_TRUE(c.peer->closed);
    // The held bytes are the open epoch's: its checkpoint releases them at once, unshipped.
    shipper.Submit(Capture(2, c.console));
    EXPECT_TRUE(Eventually([&] { return c.released.end() == 4u + held; })) << c.released.end();
    EXPECT_EQ(c.peer->from_primary.size(), 1u) << "shipped after going unprotected";
    EXPECT_TRUE(shipper.WaitForRoom(Deadline::AfterMillis(100)).ok()) << "an unprotected primary never waits";
    shipper.Stop(/*goodbye=*/false);
  }
}

TEST(CheckpointShipperCapsTest, UnacknowledgedBytesOverTheInFlightCapAreThePairEvent) {
  ShipperRig c;
  c.options.caps.in_flight_bytes = 96u << 10;
  CheckpointShipper shipper(std::make_unique<FakeChannel>(c.peer), c.console, c.released, c.options);
  c.console.Append(std::string(64u << 10, 'a'));
  shipper.Submit(Capture(1, c.console));
  ASSERT_TRUE(c.peer->WaitForSent(1));
  EXPECT_FALSE(shipper.stats().over_cap) << "64 KiB in flight is under the 96 KiB cap";
  c.console.Append(std::string(64u << 10, 'b'));
  shipper.Submit(Capture(2, c.console));
  ASSERT_TRUE(Eventually([&] { return shipper.stats().over_cap; }));
  EXPECT_EQ(shipper.stats().cap_crossed, "in_flight");
  EXPECT_EQ(c.released.end(), 0u);
  shipper.Stop(/*goodbye=*/false);
}

TEST(CheckpointShipperCapsTest, UnshippedDiskBytesOverTheirCapAreThePairEvent) {
  ShipperRig c;
  c.options.caps.unshipped_disk_bytes = 1u << 20;
  std::atomic<uint64_t> unshipped{1u << 20};
  c.options.unshipped_disk_bytes = [&] { return unshipped.load(); };
  CheckpointShipper shipper(std::make_unique<FakeChannel>(c.peer), c.console, c.released, c.options);
  EXPECT_TRUE(shipper.WaitForRoom(Deadline::AfterMillis(10)).ok());
  EXPECT_FALSE(shipper.stats().over_cap) << "at the cap is not over it";
  unshipped.store((1u << 20) + 1);
  EXPECT_TRUE(shipper.WaitForRoom(Deadline::AfterMillis(10)).ok());
  EXPECT_TRUE(shipper.stats().over_cap);
  EXPECT_EQ(shipper.stats().cap_crossed, "unshipped_disk");
  shipper.Stop(/*goodbye=*/false);
}

TEST(CheckpointShipperCapsTest, ACheckpointOverTheFrameCapIsNeverSent) {
  ShipperRig c;
  c.options.max_message_bytes = 256u << 10;
  CheckpointShipper shipper(std::make_unique<FakeChannel>(c.peer), c.console, c.released, c.options);
  c.console.Append(std::string(128u << 10, 'a'));  // the control: fits
  shipper.Submit(Capture(1, c.console));
  ASSERT_TRUE(c.peer->WaitForSent(1));
  c.console.Append(std::string(300u << 10, 'b'));
  shipper.Submit(Capture(2, c.console));
  ASSERT_TRUE(Eventually([&] { return shipper.stats().over_cap; }));
  ShipperStats stats = shipper.stats();
  EXPECT_EQ(stats.cap_crossed, "frame");
  EXPECT_NE(stats.last_error.find("frame cap of 262144"), std::string::npos) << stats.last_error;
  EXPECT_EQ(stats.shipped_epoch, 1u);
  std::lock_guard<std::mutex> lock(c.peer->mutex);
  EXPECT_EQ(c.peer->from_primary.size(), 1u) << "a frame the secondary cannot take went out";
}

}  // namespace
}  // namespace understudy::primary
