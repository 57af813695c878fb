// The shipper against a fake secondary (a Channel whose peer is this test): acks release
// exactly the output of epochs that were shipped.
#include "primary/checkpoint_shipper.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "console/released_log.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {
namespace {

using namespace std::chrono_literals;

// The primary's end of a channel; the test plays the secondary through the shared Peer.
struct Peer {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::vector<std::byte>> to_primary;
  std::vector<std::string> from_primary;

  void Send(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    to_primary.emplace_back(reinterpret_cast<const std::byte*>(message.data()),
                            reinterpret_cast<const std::byte*>(message.data()) + message.size());
    changed.notify_all();
  }
  bool WaitForSent(size_t count) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, 5s, [&] { return from_primary.size() >= count; });
  }
};

class FakeChannel : public transport::Channel {
 public:
  explicit FakeChannel(std::shared_ptr<Peer> peer) : peer_(std::move(peer)) {}
  Status Send(std::span<const transport::MessagePart> parts, Deadline) override {
    std::string message;
    for (const transport::MessagePart& part : parts) message.append(reinterpret_cast<const char*>(part.data()), part.size());
    std::lock_guard<std::mutex> lock(peer_->mutex);
    peer_->from_primary.push_back(std::move(message));
    peer_->changed.notify_all();
    return Status::Ok();
  }
  Status Receive(std::vector<std::byte>& message, Deadline deadline) override {
    std::unique_lock<std::mutex> lock(peer_->mutex);
    if (!peer_->changed.wait_until(lock, deadline.when(), [&] { return !peer_->to_primary.empty(); })) {
      return Status::DeadlineExceeded("no message");
    }
    message = std::move(peer_->to_primary.front());
    peer_->to_primary.pop_front();
    return Status::Ok();
  }
  Status Close(Deadline) override { return Status::Ok(); }
  const std::string& peer_identity() const override { return identity_; }

 private:
  std::shared_ptr<Peer> peer_;
  std::string identity_ = "fake-secondary";
};

EpochCapture Capture(uint64_t epoch, OutputBuffer& console) {
  EpochCapture capture;
  capture.epoch = epoch;
  capture.stopped_at = std::chrono::steady_clock::now();
  if (epoch == 1) capture.ram_blocks = checkpoint::RamBlockList{{"pc.ram", 64u << 10, std::nullopt}};
  capture.console_output = console.Seal(epoch);
  return capture;
}

template <typename Predicate>
bool Eventually(Predicate predicate) {
  for (auto deadline = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < deadline;) {
    if (predicate()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return predicate();
}

TEST(CheckpointShipperTest, AnAckForAnEpochNeverShippedIsRefusedAndReleasesNothing) {
  auto peer = std::make_shared<Peer>();
  OutputBuffer console(checkpoint::OutputStream::kConsole);
  console::ReleasedLog released;
  CheckpointShipper shipper(std::make_unique<FakeChannel>(peer), console, released, ShipperOptions{});

  console.Append("one\n");
  shipper.Submit(Capture(1, console));
  ASSERT_TRUE(peer->WaitForSent(1));
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
  shipper.Stop(/*goodbye=*/false);
}

TEST(CheckpointShipperTest, AnAckFarAheadIsRefusedToo) {
  auto peer = std::make_shared<Peer>();
  OutputBuffer console(checkpoint::OutputStream::kConsole);
  console::ReleasedLog released;
  CheckpointShipper shipper(std::make_unique<FakeChannel>(peer), console, released, ShipperOptions{});
  console.Append("one\n");
  shipper.Submit(Capture(1, console));
  ASSERT_TRUE(peer->WaitForSent(1));
  peer->Send(replication::EncodeAck(UINT64_MAX));
  ASSERT_TRUE(Eventually([&] { return shipper.stats().secondary_lost; }));
  EXPECT_EQ(shipper.stats().acked_epoch, 0u);
  EXPECT_EQ(released.end(), 0u);
  shipper.Stop(/*goodbye=*/false);
}

}  // namespace
}  // namespace understudy::primary
