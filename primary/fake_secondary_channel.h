// FakeSecondaryChannel: the primary's end of a channel whose other end is a test playing the
// secondary through a shared Peer (messages both ways, in memory). Test only.
#ifndef UNDERSTUDY_PRIMARY_FAKE_SECONDARY_CHANNEL_H_
#define UNDERSTUDY_PRIMARY_FAKE_SECONDARY_CHANNEL_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/channel.h"

namespace understudy::primary {

using namespace std::chrono_literals;

// The primary's end of a channel; the test plays the secondary through the shared Peer.
struct Peer {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::vector<std::byte>> to_primary;
  std::vector<std::string> from_primary;
  bool closed = false;  // the primary said goodbye

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

class FakeChannel final : public transport::Channel {
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
  Status Close(Deadline) override {
    std::lock_guard<std::mutex> lock(peer_->mutex);
    peer_->closed = true;
    return Status::Ok();
  }
  const std::string& peer_identity() const override { return identity_; }

 private:
  std::shared_ptr<Peer> peer_;
  std::string identity_ = "fake-secondary";
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_FAKE_SECONDARY_CHANNEL_H_
