#include "transport/testing/short_deadline_stream.h"

#include <gtest/gtest.h>

#include <thread>

namespace understudy::transport::testing {

namespace {

// Message i: big (8 MiB) when i is even, 9 bytes when odd; every byte names its message.
std::vector<std::byte> MessageNumber(int i) {
  size_t size = i % 2 == 0 ? (8u << 20) + static_cast<size_t>(i) : 9;
  std::vector<std::byte> bytes(size);
  for (size_t at = 0; at < size; ++at) bytes[at] = std::byte(static_cast<uint8_t>(i * 31 + at % 251));
  return bytes;
}

}  // namespace

int ExpectFramesSurviveShortReceiveDeadlines(Channel& sender, Channel& receiver) {
  constexpr int kMessages = 8;
  std::thread sending([&] {
    for (int i = 0; i < kMessages; ++i) {
      std::vector<std::byte> message = MessageNumber(i);
      Status sent = sender.Send(message, Deadline::AfterMillis(60000));
      EXPECT_TRUE(sent.ok()) << "message " << i << ": " << sent;
      if (!sent.ok()) return;
    }
  });
  int deadlines_hit = 0;
  std::vector<std::byte> message;
  for (int i = 0; i < kMessages; ++i) {
    Deadline give_up = Deadline::AfterMillis(60000);
    Status received;
    do {
      received = receiver.Receive(message, Deadline::AfterMillis(1));
      if (received.code() == Status::Code::kDeadlineExceeded) ++deadlines_hit;
    } while (received.code() == Status::Code::kDeadlineExceeded && !give_up.Expired());
    EXPECT_TRUE(received.ok()) << "message " << i << ": " << received;
    if (!received.ok()) break;
    EXPECT_TRUE(message == MessageNumber(i)) << "message " << i << " arrived as " << message.size() << " bytes, not whole";
  }
  sending.join();
  return deadlines_hit;
}

}  // namespace understudy::transport::testing
