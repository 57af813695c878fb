// A 300 MiB output epoch ships in chunks and commits (issue 16, item 5): the real shipper
// sends it over a real tcp:// channel on loopback to this test, which does what the
// secondary's commit path does with it — ParseCheckpoint, ApplyCheckpoint into a RamImage,
// the output appended by stream offset — and acks; the ack releases all of it. Before
// chunking, an epoch's output was one section, and over 256 MiB the secondary refused it
// forever (the negative control: a single section over the cap is refused, in
// checkpoint_codec_test's CheckpointChunkingTest).
#include <gtest/gtest.h>

#include <thread>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "common/test_poll.h"
#include "console/released_log.h"
#include "primary/checkpoint_shipper.h"
#include "replication/agent_protocol.h"
#include "transport/channel.h"

namespace understudy::primary {
namespace {

constexpr size_t kOutputBytes = size_t{300} << 20;

char ByteAt(uint64_t offset) { return static_cast<char>('A' + (offset * 7 + offset / 4096) % 53); }

// The secondary's side of one checkpoint: receive, decode, apply, keep the console output.
struct Committed {
  uint64_t epoch = 0;
  size_t output_sections = 0;
  size_t largest_output_section = 0;
  uint64_t console_end = 0;      // one past the last console byte appended
  bool console_intact = true;    // every byte where it belongs
};

Result<Committed> ReceiveAndCommit(transport::Channel& channel, std::unique_ptr<checkpoint::RamImage>& image) {
  std::vector<std::byte> message;
  for (;;) {
    UNDERSTUDY_RETURN_IF_ERROR(channel.Receive(message, Deadline::AfterMillis(120000)));
    if (!message.empty() && message[0] == replication::kCheckpointTag) break;
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(checkpoint::Checkpoint checkpoint,
                              checkpoint::ParseCheckpoint(std::span<const std::byte>(message).subspan(1)));
  message = {};
  if (checkpoint.ram_blocks) {
    UNDERSTUDY_ASSIGN_OR_RETURN(image, checkpoint::RamImage::Create(*checkpoint.ram_blocks));
  }
  if (!image) return Status::FailedPrecondition("a checkpoint before the initial image");
  UNDERSTUDY_RETURN_IF_ERROR(checkpoint::ApplyCheckpoint(checkpoint, *image));
  Committed committed;
  committed.epoch = checkpoint.epoch;
  for (const checkpoint::OutputChunk& chunk : checkpoint.outputs) {
    if (chunk.stream != checkpoint::OutputStream::kConsole) continue;
    ++committed.output_sections;
    committed.largest_output_section = std::max(committed.largest_output_section, chunk.bytes.size());
    if (chunk.stream_offset != committed.console_end && committed.console_end != 0) committed.console_intact = false;
    for (size_t i = 0; i < chunk.bytes.size(); i += 4093) {
      if (chunk.bytes[i] != ByteAt(chunk.stream_offset + i)) committed.console_intact = false;
    }
    committed.console_end = chunk.stream_offset + chunk.bytes.size();
  }
  std::string ack = replication::EncodeAck(checkpoint.epoch);
  UNDERSTUDY_RETURN_IF_ERROR(channel.Send(std::as_bytes(std::span(ack.data(), ack.size())), Deadline::AfterMillis(10000)));
  return committed;
}

// The guest's console output of one epoch: kOutputBytes of the ByteAt pattern.
void PrintOutputEpoch(OutputBuffer& console) {
  std::string piece(1u << 20, '\0');
  for (uint64_t at = 0; at < kOutputBytes; at += piece.size()) {
    for (size_t i = 0; i < piece.size(); ++i) piece[i] = ByteAt(at + i);
    console.Append(piece);
  }
}

// How far `released` got within 30 s of waiting for `bytes`.
uint64_t WaitForReleased(const console::ReleasedLog& released, uint64_t bytes) {
  PollUntil([&] { return released.end() >= bytes; }, std::chrono::seconds(30));
  return released.end();
}

TEST(LargeOutputEpochTest, A300MibOutputEpochShipsInChunksAndCommits) {
  transport::ChannelOptions options;
  options.insecure = true;
  Result<std::unique_ptr<transport::Listener>> listener = transport::Listen("tcp://127.0.0.1:0", options);
  ASSERT_TRUE(listener.ok()) << listener.status();
  Result<std::unique_ptr<transport::Channel>> dialed = transport::Dial((*listener)->address(), options, Deadline::AfterMillis(5000));
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  Result<std::unique_ptr<transport::Channel>> secondary = (*listener)->Accept(Deadline::AfterMillis(5000));
  ASSERT_TRUE(secondary.ok()) << secondary.status();

  OutputBuffer console(checkpoint::OutputStream::kConsole);
  console::ReleasedLog released;  // keeps the newest 16 MiB; end() counts everything
  ShipperOptions shipper_options;
  shipper_options.max_message_bytes = options.max_message_bytes;  // the channel's frame cap: 1 GiB
  CheckpointShipper shipper(std::move(*dialed), console, released, shipper_options);

  std::unique_ptr<checkpoint::RamImage> image;
  EpochCapture first;
  first.epoch = 1;
  first.stopped_at = std::chrono::steady_clock::now();
  first.ram_blocks = checkpoint::RamBlockList{{"pc.ram", 1u << 20, std::nullopt}};
  first.console_output = console.Seal(1);
  first.device_state = std::string(1, '\0');  // QEMU's EOF byte alone
  shipper.Submit(std::move(first));
  Result<Committed> one = ReceiveAndCommit(**secondary, image);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->epoch, 1u);

  // The guest prints 300 MiB in one epoch (the secondary acked nothing meanwhile).
  PrintOutputEpoch(console);
  ASSERT_TRUE(shipper.WaitForRoom(Deadline::AfterMillis(1000)).ok());
  ASSERT_FALSE(shipper.stats().over_cap) << "300 MiB is under the default 512 MiB held-output cap";
  EpochCapture second;
  second.epoch = 2;
  second.stopped_at = std::chrono::steady_clock::now();
  second.console_output = console.Seal(2);
  second.device_state = std::string(1, '\0');
  shipper.Submit(std::move(second));

  Result<Committed> two = ReceiveAndCommit(**secondary, image);
  ASSERT_TRUE(two.ok()) << two.status() << " (shipper: " << shipper.stats().last_error << ")";
  EXPECT_EQ(two->epoch, 2u);
  EXPECT_EQ(image->committed_epoch(), 2u) << "the secondary's image did not commit epoch 2";
  EXPECT_EQ(two->console_end, kOutputBytes);
  EXPECT_TRUE(two->console_intact);
  EXPECT_EQ(two->output_sections, (kOutputBytes + checkpoint::format::kChunkSectionBytes - 1) / checkpoint::format::kChunkSectionBytes)
      << "300 MiB in 19 sections of at most 16 MiB";
  EXPECT_LE(two->largest_output_section, checkpoint::format::kChunkSectionBytes);

  // The ack releases the whole epoch on the primary.
  EXPECT_EQ(WaitForReleased(released, kOutputBytes), kOutputBytes);
  EXPECT_EQ(shipper.stats().acked_epoch, 2u);
  EXPECT_FALSE(shipper.stats().over_cap) << shipper.stats().last_error;
  EXPECT_EQ(console.held_bytes(), 0u);
  shipper.Stop(/*goodbye=*/true);
}

}  // namespace
}  // namespace understudy::primary
