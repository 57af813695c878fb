#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "transport/channel.h"
#include "transport/testing/short_deadline_stream.h"

namespace understudy::transport {
namespace {

ChannelOptions Insecure() {
  ChannelOptions options;
  options.insecure = true;
  return options;
}

struct Pair {
  std::unique_ptr<Channel> client, server;
};

Pair Connect() {
  auto listener = Listen("tcp://127.0.0.1:0", Insecure());
  EXPECT_TRUE(listener.ok()) << listener.status();
  Pair pair;
  std::thread dialer([&] {
    auto client = Dial((*listener)->address(), Insecure(), Deadline::AfterMillis(5000));
    EXPECT_TRUE(client.ok()) << client.status();
    pair.client = std::move(*client);
  });
  auto server = (*listener)->Accept(Deadline::AfterMillis(5000));
  dialer.join();
  EXPECT_TRUE(server.ok()) << server.status();
  pair.server = std::move(*server);
  return pair;
}

std::vector<std::byte> RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<std::byte> bytes(size);
  for (auto& b : bytes) b = std::byte(static_cast<uint8_t>(random()));
  return bytes;
}

TEST(TcpChannelTest, ScatterGatherMessagesArriveWholeAndInOrder) {
  Pair pair = Connect();
  std::vector<size_t> sizes = {1, 4096, 100000, 64u << 20};
  std::thread sender([&] {
    for (size_t size : sizes) {
      std::vector<std::byte> whole = RandomBytes(size, size);
      // Three parts of uneven size, sent without joining them first.
      size_t a = size / 3, b = size / 2;
      std::vector<MessagePart> parts = {MessagePart(whole).subspan(0, a), MessagePart(whole).subspan(a, b - a),
                                        MessagePart(whole).subspan(b)};
      ASSERT_TRUE(pair.client->Send(parts, Deadline::AfterMillis(30000)).ok());
    }
    ASSERT_TRUE(pair.client->Close(Deadline::AfterMillis(1000)).ok());
  });
  std::vector<std::byte> message;
  for (size_t size : sizes) {
    ASSERT_TRUE(pair.server->Receive(message, Deadline::AfterMillis(30000)).ok());
    EXPECT_EQ(message, RandomBytes(size, size)) << "message of " << size << " bytes";
  }
  Status end = pair.server->Receive(message, Deadline::AfterMillis(1000));
  EXPECT_EQ(end.code(), Status::Code::kPeerClosed) << end;
  sender.join();
}

TEST(TcpChannelTest, ReceiveDeadlinesMidMessageNeverMisalignFrames) {
  Pair pair = Connect();
  EXPECT_GT(testing::ExpectFramesSurviveShortReceiveDeadlines(*pair.client, *pair.server), 0);
}

TEST(TcpChannelTest, DeathWithoutGoodbyeIsBrokenNotClosed) {
  Pair pair = Connect();
  pair.client.reset();  // socket closed, no end-of-stream frame
  std::vector<std::byte> message;
  Status status = pair.server->Receive(message, Deadline::AfterMillis(1000));
  EXPECT_EQ(status.code(), Status::Code::kBroken) << status;
  EXPECT_NE(status.message().find("without a goodbye"), std::string::npos);
}

TEST(TcpChannelTest, SilentPeerHitsTheDeadline) {
  Pair pair = Connect();
  std::vector<std::byte> message;
  Status status = pair.server->Receive(message, Deadline::AfterMillis(50));
  EXPECT_EQ(status.code(), Status::Code::kDeadlineExceeded) << status;
}

TEST(TcpChannelTest, PlainTcpNeedsInsecureAndUnknownSchemesAreRefused) {
  auto refused = Listen("tcp://127.0.0.1:0", ChannelOptions{});
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("insecure: true"), std::string::npos);
  EXPECT_FALSE(Dial("carrier-pigeon://127.0.0.1:1", Insecure(), Deadline::AfterMillis(100)).ok());
  EXPECT_FALSE(Dial("tcp://127.0.0.1", Insecure(), Deadline::AfterMillis(100)).ok());
}

}  // namespace
}  // namespace understudy::transport
