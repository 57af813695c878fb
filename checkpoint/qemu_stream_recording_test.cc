// The QEMU stream codec against real streams: QEMU 7.2 in COLO mode running the counter
// guest under KVM, recorded once per test binary and then parsed, re-chunked, and replayed
// into a fresh QEMU.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "checkpoint/qemu_stream_reader.h"
#include "checkpoint/qemu_stream_writer.h"
#include "common/byte_order.h"
#include "common/fd_io.h"
#include "tests/harness/colo_recording.h"
#include "tests/harness/require_guest_accelerator.h"

namespace understudy::checkpoint {
namespace {

using testing::ColoRecording;
using testing::ColoRecordingOptions;

constexpr uint32_t kDirtiedPages = 64;
constexpr uint64_t kDirtyRegionStart = 0x400000;  // tests/guests/counter.c
constexpr size_t kPage = 4096;

// Everything a parse yields, in a form two parses can be compared by.
struct ParsedStream : QemuStreamVisitor {
  struct Checkpoint {
    std::map<std::pair<uint32_t, uint64_t>, uint32_t> page_first_words;  // (block, offset) → word 0
    size_t zero_pages = 0;
    size_t device_bytes = 0;
  };
  StreamConfiguration configuration;
  RamBlockList blocks;
  std::vector<uint16_t> commands;
  // The RAM image after the last complete unit: (block, offset) → page contents.
  std::map<std::pair<uint32_t, uint64_t>, std::vector<std::byte>> image;
  std::vector<std::byte> last_device_state;
  std::string vmdesc;
  size_t precopy_pages = 0;
  size_t device_sections = 0;
  bool in_checkpoint = false;
  std::vector<Checkpoint> checkpoints;

  Status OnConfiguration(const StreamConfiguration& c) override {
    configuration = c;
    return Status::Ok();
  }
  Status OnCommand(uint16_t command, std::span<const std::byte>) override {
    commands.push_back(command);
    return Status::Ok();
  }
  Status OnRamBlocks(const RamBlockList& b) override {
    blocks = b;
    return Status::Ok();
  }
  Status OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) override {
    image[{block, offset}].assign(page.begin(), page.end());
    if (in_checkpoint) {
      checkpoints.back().page_first_words[{block, offset}] = LoadLittleEndian<uint32_t>(page.data());
    } else {
      ++precopy_pages;
    }
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) override {
    image[{block, offset}].assign(kPage, std::byte{fill});
    if (in_checkpoint) {
      checkpoints.back().page_first_words[{block, offset}] = 0;
      ++checkpoints.back().zero_pages;
    } else {
      ++precopy_pages;
    }
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view json, const std::vector<DeviceSectionSpan>& sections) override {
    vmdesc = json;
    device_sections = sections.size();
    return Status::Ok();
  }
  Status OnColoMessage(qemu_stream::ColoMessage message) override {
    if (message == qemu_stream::ColoMessage::kCheckpointRequest) {
      in_checkpoint = true;
      checkpoints.emplace_back();
    }
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> state) override {
    last_device_state.assign(state.begin(), state.end());
    if (in_checkpoint) checkpoints.back().device_bytes = state.size();
    in_checkpoint = false;
    return Status::Ok();
  }
};

class QemuStreamRecordingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::GuestAcceleratorUnavailableReason()) return;
    ColoRecordingOptions options;
    options.guest = {.pages = kDirtiedPages, .every = 500};
    options.checkpoints = 24;
    Result<ColoRecording> result = testing::RecordColoStream(options);
    if (!result.ok()) {
      recording_error_ = new std::string(result.status().ToString());
      return;
    }
    recording_ = new ColoRecording(std::move(*result));
  }
  static void TearDownTestSuite() {
    delete recording_;
    delete recording_error_;
    recording_ = nullptr;
    recording_error_ = nullptr;
  }
  void SetUp() override {
    UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
    ASSERT_EQ(recording_error_, nullptr) << *recording_error_;
    ASSERT_NE(recording_, nullptr);
  }

  static Status ParseInChunks(ParsedStream& parsed, std::mt19937& random, size_t max_chunk) {
    QemuStreamReader reader(parsed);
    std::span<const std::byte> rest(recording_->stream);
    std::uniform_int_distribution<size_t> size(1, max_chunk);
    while (!rest.empty()) {
      size_t take = std::min(rest.size(), size(random));
      UNDERSTUDY_RETURN_IF_ERROR(reader.Feed(rest.first(take)));
      rest = rest.subspan(take);
    }
    if (reader.checkpoints_completed() != recording_->checkpoints.size()) {
      return Status::Internal("parsed " + std::to_string(reader.checkpoints_completed()) + " checkpoints");
    }
    return Status::Ok();
  }

  static ColoRecording* recording_;
  static std::string* recording_error_;
};

ColoRecording* QemuStreamRecordingTest::recording_ = nullptr;
std::string* QemuStreamRecordingTest::recording_error_ = nullptr;

TEST_F(QemuStreamRecordingTest, ParsesEveryCheckpointAndPageCountsMatchTheGuest) {
  ParsedStream parsed;
  QemuStreamReader reader(parsed);
  ASSERT_TRUE(reader.Feed(recording_->stream).ok()) << reader.Feed({}).ToString();
  EXPECT_EQ(reader.bytes_consumed(), recording_->stream.size());
  EXPECT_EQ(reader.phase(), QemuStreamReader::Phase::kAwaitingCheckpoint);
  ASSERT_GE(reader.checkpoints_completed(), 20u);
  ASSERT_EQ(parsed.checkpoints.size(), reader.checkpoints_completed());

  EXPECT_EQ(parsed.configuration.machine_type.substr(0, 9), "pc-i440fx");
  EXPECT_EQ(parsed.commands, std::vector<uint16_t>{qemu_stream::kCommandEnableColo});
  auto pc_ram = std::find_if(parsed.blocks.begin(), parsed.blocks.end(),
                             [](const RamBlockInfo& b) { return b.id == "pc.ram"; });
  ASSERT_NE(pc_ram, parsed.blocks.end());
  const uint32_t ram_index = static_cast<uint32_t>(pc_ram - parsed.blocks.begin());
  EXPECT_EQ(pc_ram->used_length, 64u << 20);
  // The precopy sends every page of every block exactly once (zero pages as ZERO records).
  uint64_t total_pages = 0;
  for (const RamBlockInfo& block : parsed.blocks) total_pages += block.used_length / kPage;
  EXPECT_GE(parsed.precopy_pages, total_pages);
  EXPECT_GT(parsed.device_sections, 10u);
  EXPECT_NE(parsed.vmdesc.find("\"devices\""), std::string::npos);

  uint32_t previous_sequence = 0;
  for (size_t i = 0; i < parsed.checkpoints.size(); ++i) {
    const auto& checkpoint = parsed.checkpoints[i];
    SCOPED_TRACE("checkpoint " + std::to_string(i + 1));
    // The guest rewrites the same 64 pages on every pass, and makes thousands of passes per
    // 50 ms epoch: every checkpoint carries all 64, plus a little (stack, globals).
    std::vector<uint32_t> sequence;
    for (uint32_t page = 0; page < kDirtiedPages; ++page) {
      auto found = checkpoint.page_first_words.find({ram_index, kDirtyRegionStart + page * kPage});
      ASSERT_NE(found, checkpoint.page_first_words.end()) << "dirtied page " << page << " missing";
      sequence.push_back(found->second);
    }
    EXPECT_GE(checkpoint.page_first_words.size(), kDirtiedPages);
    EXPECT_LE(checkpoint.page_first_words.size(), kDirtiedPages + 48u) << "far more pages than the guest dirties";
    // Pages are written in order each pass, so a stop mid-pass leaves a prefix one ahead.
    for (uint32_t page = 1; page < kDirtiedPages; ++page) {
      EXPECT_TRUE(sequence[page] == sequence[0] || sequence[page] + 1 == sequence[0])
          << "page " << page << " holds " << sequence[page] << ", page 0 holds " << sequence[0];
    }
    EXPECT_GT(sequence[0], previous_sequence) << "the sequence must advance between checkpoints";
    previous_sequence = sequence[0];
    EXPECT_GT(checkpoint.device_bytes, 1000u);
  }
}

TEST_F(QemuStreamRecordingTest, AnyChunkingYieldsTheSameParse) {
  ParsedStream whole;
  QemuStreamReader reader(whole);
  ASSERT_TRUE(reader.Feed(recording_->stream).ok());
  std::mt19937 random(20261126);
  for (size_t max_chunk : {3ul, 4097ul, 65536ul}) {
    ParsedStream chunked;
    Status status = ParseInChunks(chunked, random, max_chunk);
    ASSERT_TRUE(status.ok()) << "max chunk " << max_chunk << ": " << status;
    EXPECT_EQ(chunked.image, whole.image) << "max chunk " << max_chunk;
    EXPECT_EQ(chunked.last_device_state, whole.last_device_state);
    EXPECT_EQ(chunked.checkpoints.size(), whole.checkpoints.size());
    for (size_t i = 0; i < whole.checkpoints.size(); ++i) {
      EXPECT_EQ(chunked.checkpoints[i].page_first_words, whole.checkpoints[i].page_first_words);
    }
  }
}

TEST_F(QemuStreamRecordingTest, PromotionStreamResumesTheGuestWhereTheCheckpointLeftIt) {
  ParsedStream parsed;
  QemuStreamReader reader(parsed);
  ASSERT_TRUE(reader.Feed(recording_->stream).ok());

  // Build the promotion stream: the full image as of the last checkpoint, its device state.
  std::string promotion;
  QemuStreamWriter writer([&](std::span<const std::byte> bytes) {
    promotion.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return Status::Ok();
  });
  StreamConfiguration configuration{parsed.configuration.machine_type, {}};
  ASSERT_TRUE(writer.WriteHeader(configuration).ok());
  ASSERT_TRUE(writer.BeginRamStart(*reader.ram_section_id(), parsed.blocks).ok());
  for (const auto& [where, page] : parsed.image) {
    bool zero = std::all_of(page.begin(), page.end(), [](std::byte b) { return b == std::byte{0}; });
    Status status = zero ? writer.WriteZeroPage(where.first, where.second)
                         : writer.WritePage(where.first, where.second, page);
    ASSERT_TRUE(status.ok()) << status;
  }
  ASSERT_TRUE(writer.EndRamSection().ok());
  ASSERT_TRUE(writer.WriteDeviceState(parsed.last_device_state).ok());
  ASSERT_TRUE(writer.WriteVmDescription().ok());

  // Our own reader accepts what our writer wrote (split by footers: the VM description is minimal).
  ParsedStream reparsed;
  QemuStreamReader strict_reader(reparsed, {.require_vmdesc_cross_check = false});
  Status reparse = strict_reader.Feed(std::as_bytes(std::span(promotion.data(), promotion.size())));
  ASSERT_TRUE(reparse.ok()) << reparse;
  EXPECT_TRUE(strict_reader.precopy_complete());
  EXPECT_EQ(reparsed.image, parsed.image);

  // A fresh QEMU from the same definition loads it and continues counting.
  auto standby = testing::TestGuest::Start(recording_->definition, "standby", testing::StartMode::kIncomingDefer);
  ASSERT_TRUE(standby.ok()) << standby.status();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  qemu::QmpClient& qmp = (*standby)->process().qmp();
  ASSERT_TRUE(qmp.PassFd("incoming", theirs.get(), Deadline::AfterMillis(5000)).ok());
  auto incoming = qmp.Execute("migrate-incoming", {{"uri", "fd:incoming"}}, Deadline::AfterMillis(5000));
  ASSERT_TRUE(incoming.ok()) << incoming.status();
  theirs.reset();
  Status sent = WriteAll(ours.get(), promotion, Deadline::AfterMillis(30000));
  ASSERT_TRUE(sent.ok()) << sent;
  ours.reset();

  Result<std::string> first = (*standby)->console().ReadLine(Deadline::AfterMillis(30000));
  ASSERT_TRUE(first.ok()) << first.status() << "; standby log: " << (*standby)->process().Log();
  Result<std::string> second = (*standby)->console().ReadLine(Deadline::AfterMillis(30000));
  ASSERT_TRUE(second.ok()) << second.status();
  // The first line can be cut at its start: the resumed guest may print its first bytes before
  // the console is read (seen under TCG: "472", then "3473"). The second line is whole, so the
  // resumed value is the one before it, and the first line must be that value or its end.
  const uint64_t value = std::stoull(*second) - 1;
  const std::string resumed = std::to_string(value);
  EXPECT_FALSE(first->empty());
  EXPECT_TRUE(resumed.ends_with(*first)) << "first line '" << *first << "' is not (the end of) " << resumed
                                         << ", the line before " << *second;
  // The console had shown lines_seen_at_ack lines when the last checkpoint was acked; the
  // guest may have printed one more between stop and our count. It must not start over.
  uint64_t seen = recording_->lines_seen_at_ack.back();
  EXPECT_GT(value, 1u) << "the standby started from scratch instead of the checkpoint";
  EXPECT_GE(value, seen) << "the standby repeated output older than the checkpoint";
  EXPECT_LE(value, recording_->lines_seen_at_end + 1) << "the standby skipped ahead";
  std::printf("standby resumed at line %llu (console had shown %llu at the last ack)\n",
              static_cast<unsigned long long>(value), static_cast<unsigned long long>(seen));
}

}  // namespace
}  // namespace understudy::checkpoint
