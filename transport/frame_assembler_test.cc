#include "transport/frame_assembler.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/byte_order.h"

namespace understudy::transport {
namespace {

std::vector<std::byte> Frame(const std::string& body) {
  std::vector<std::byte> frame(4 + body.size());
  StoreLittleEndian<uint32_t>(frame.data(), static_cast<uint32_t>(body.size()));
  std::transform(body.begin(), body.end(), frame.begin() + 4, [](char c) { return std::byte(c); });
  return frame;
}

std::string Text(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Feeds `stream` in chunks of `chunk` bytes and returns every completed message.
std::vector<std::string> Assemble(const std::vector<std::byte>& stream, size_t chunk) {
  FrameAssembler assembler(1 << 20);
  std::vector<std::string> messages;
  size_t at = 0;
  std::vector<std::byte> message;
  while (at < stream.size()) {
    std::span<std::byte> space = assembler.space();
    size_t count = std::min({chunk, space.size(), stream.size() - at});
    std::copy_n(stream.begin() + at, count, space.begin());
    at += count;
    EXPECT_TRUE(assembler.Filled(count, "test").ok());
    if (assembler.complete()) {
      assembler.TakeMessage(message);
      messages.push_back(Text(message));
    }
  }
  EXPECT_FALSE(assembler.mid_frame());
  return messages;
}

TEST(FrameAssemblerTest, FramesSurviveAnyReadSize) {
  std::vector<std::byte> stream;
  for (const std::string& body : {std::string("first"), std::string(), std::string(5000, 'x'), std::string("last")}) {
    std::vector<std::byte> frame = Frame(body);
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  for (size_t chunk : {1, 3, 4, 7, 4096, 100000}) {
    std::vector<std::string> messages = Assemble(stream, chunk);
    ASSERT_EQ(messages.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(messages[0], "first");
    EXPECT_EQ(messages[1], "");
    EXPECT_EQ(messages[2], std::string(5000, 'x'));
    EXPECT_EQ(messages[3], "last");
  }
}

TEST(FrameAssemblerTest, PartialFrameIsMidFrame) {
  FrameAssembler assembler(100);
  EXPECT_FALSE(assembler.mid_frame());
  std::vector<std::byte> frame = Frame("hello");
  std::copy_n(frame.begin(), 6, assembler.space().begin());
  ASSERT_TRUE(assembler.Filled(4, "test").ok());
  ASSERT_TRUE(assembler.Filled(0, "test").ok());
  EXPECT_TRUE(assembler.mid_frame());
  EXPECT_EQ(assembler.space().size(), 5u);
}

TEST(FrameAssemblerTest, OversizedHeaderIsCorruptionNamingThePeer) {
  FrameAssembler assembler(10);
  std::vector<std::byte> frame = Frame(std::string(11, 'y'));
  std::copy_n(frame.begin(), 4, assembler.space().begin());
  Status status = assembler.Filled(4, "primary@10.0.0.1:5000");
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  EXPECT_NE(status.message().find("primary@10.0.0.1:5000"), std::string::npos) << status;
  EXPECT_NE(status.message().find("11 bytes"), std::string::npos) << status;
}

TEST(FrameAssemblerTest, EndOfStreamWordCompletesWithoutBody) {
  FrameAssembler assembler(10);
  StoreLittleEndian<uint32_t>(assembler.space().data(), kFrameEndOfStream);
  ASSERT_TRUE(assembler.Filled(4, "test").ok());
  EXPECT_TRUE(assembler.complete());
  EXPECT_TRUE(assembler.end_of_stream());
}

}  // namespace
}  // namespace understudy::transport
