// The Committer without QEMU: a fake standby feed, a real RAM image, a real disk copy (journal
// and NBD server in the test's own scratch directory), checkpoints built as a primary builds
// them.
#include "secondary/committer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "checkpoint/checkpoint_test_util.h"
#include "common/test_scratch_dir.h"
#include "replication/agent_protocol.h"

namespace understudy::secondary {
namespace {

constexpr uint64_t kDiskBytes = 1 << 20;

// Records what the committer hands to the standby.
class RecordingStandby : public StandbyFeed {
 public:
  void Start(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo&,
             const checkpoint::RamImage& image) override {
    ++started;
    started_with = definition;
    forwarded.push_back(image.committed_epoch());
  }
  void Forward(const checkpoint::Checkpoint& checkpoint, const checkpoint::RamImage& image) override {
    EXPECT_EQ(image.committed_epoch(), checkpoint.epoch) << "fed before the commit";
    forwarded.push_back(checkpoint.epoch);
  }
  void Discard() override { ++discarded; }

  int started = 0;
  int discarded = 0;
  qemu::VmDefinition started_with;
  std::vector<uint64_t> forwarded;  // epochs, in order
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Where two disk images first differ (-1: equal), so a failure prints a number, not a megabyte.
int64_t FirstDifference(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return static_cast<int64_t>(std::min(a.size(), b.size()));
  auto [left, right] = std::mismatch(a.begin(), a.end(), b.begin());
  return left == a.end() ? -1 : left - a.begin();
}

std::span<const std::byte> Bytes(const std::string& message) {
  return std::as_bytes(std::span(message.data(), message.size()));
}

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TestScratchDir> dir = TestScratchDir::Create("committer");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    Result<std::unique_ptr<checkpoint::RamImage>> image = checkpoint::RamImage::Create(checkpoint::testing::SampleBlocks());
    ASSERT_TRUE(image.ok()) << image.status();
    primary_image_ = std::move(*image);
    MakeCommitter();
  }

  void MakeCommitter() {
    committer_.reset();
    Result<std::unique_ptr<disk::DiskReplica>> disk = disk::DiskReplica::Open(dir_->File("disk.raw"));
    ASSERT_TRUE(disk.ok()) << disk.status();
    CommitterOptions options;
    options.binding.vm = "unit";
    options.disk_socket_path = dir_->File("disk.sock");
    options.nic_socket_path = dir_->File("net.sock");
    options.test_stall_disk_apply_at_epoch = stall_at_epoch_;
    options.test_stall_disk_apply = [this](uint64_t epoch) {
      if (on_mid_apply_) on_mid_apply_(epoch);
    };
    committer_ = std::make_unique<Committer>(std::move(options), std::move(*disk), console_, standby_);
  }

  // The next epoch as the primary would ship it: random pages, the console's next bytes and
  // (optionally) disk writes; the primary's own image commits it.
  checkpoint::Checkpoint NextEpoch(std::vector<checkpoint::DiskWrite> writes = {}) {
    const uint64_t epoch = ++epoch_;
    checkpoint::Checkpoint checkpoint = checkpoint::testing::StageRandomEpoch(random_, *primary_image_, epoch, 40);
    std::string text = "epoch " + std::to_string(epoch) + "\n";
    checkpoint.outputs = {{checkpoint::OutputStream::kConsole, console_offset_, text}};
    console_offset_ += text.size();
    checkpoint.disk_writes = std::move(writes);
    if (epoch == 1) {
      qemu::VmDefinition definition;
      definition.name = "unit";
      definition.disk.size_bytes = kDiskBytes;
      definition.disk.lineage = "pairing-1";
      checkpoint.machine_definition_json = definition.ToPeerJson().dump();
      checkpoint.ram_blocks = primary_image_->blocks();
      checkpoint.stream_info = checkpoint::QemuStreamInfo{2, "pc-i440fx-7.2", {}};
      checkpoint.full = true;
    }
    primary_image_->CommitStaged(epoch);
    return checkpoint;
  }

  static std::string Message(const checkpoint::Checkpoint& checkpoint) {
    return std::string(1, static_cast<char>(replication::kCheckpointTag)) + checkpoint::SerializeCheckpoint(checkpoint);
  }

  Committer::Reply Send(const checkpoint::Checkpoint& checkpoint) { return committer_->Receive(Bytes(Message(checkpoint))); }

  static checkpoint::DiskWrite Write(uint64_t offset, char fill, uint32_t length = 4096) {
    return {offset, length, false, std::string(length, fill)};
  }

  // Every committed page of the secondary's image equals the primary's.
  void ExpectSameRam() {
    const checkpoint::RamImage* image = committer_->image();
    ASSERT_NE(image, nullptr);
    for (uint32_t block = 0; block < image->blocks().size(); ++block) {
      for (uint64_t offset = 0; offset < image->blocks()[block].used_length; offset += checkpoint::RamImage::kPageBytes) {
        auto ours = image->CommittedPage(block, offset);
        auto theirs = primary_image_->CommittedPage(block, offset);
        ASSERT_TRUE(std::equal(ours.begin(), ours.end(), theirs.begin())) << "block " << block << " offset " << offset;
      }
    }
  }

  std::optional<TestScratchDir> dir_;
  std::mt19937_64 random_{17};
  std::unique_ptr<checkpoint::RamImage> primary_image_;
  uint64_t epoch_ = 0;
  uint64_t console_offset_ = 0;
  console::ReleasedLog console_;
  RecordingStandby standby_;
  uint64_t stall_at_epoch_ = 0;
  std::function<void(uint64_t)> on_mid_apply_;
  std::unique_ptr<Committer> committer_;
};

TEST_F(CommitterTest, CommitsInOrderAcksAndFeedsTheStandby) {
  Committer::Reply first = Send(NextEpoch({Write(0, 'a')}));
  EXPECT_EQ(first.message, replication::EncodeAck(1));
  EXPECT_EQ(first.committed_epoch, 1u);
  ASSERT_EQ(standby_.started, 1);
  // Host-local paths come from this host's options, never from the peer.
  EXPECT_EQ(standby_.started_with.disk.nbd_socket, dir_->File("disk.sock"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Send(NextEpoch({Write(4096 * (i + 1), 'b' + i)})).committed_epoch, epoch_);
  EXPECT_EQ(committer_->committed_epoch(), 4u);
  EXPECT_EQ(standby_.forwarded, (std::vector<uint64_t>{1, 2, 3, 4}));
  ExpectSameRam();
  Result<std::string> console = console_.ReadFrom(0, 1000, Deadline::AfterMillis(0));
  ASSERT_TRUE(console.ok()) << console.status();
  EXPECT_EQ(*console, "epoch 1\nepoch 2\nepoch 3\nepoch 4\n");
  std::string disk = ReadFile(dir_->File("disk.raw"));
  ASSERT_EQ(disk.size(), kDiskBytes);
  EXPECT_EQ(disk.substr(0, 4), "aaaa");
  EXPECT_EQ(disk.substr(3 * 4096, 4), "dddd");
  EXPECT_EQ(committer_->status().committed_epoch, 4u);
  EXPECT_TRUE(committer_->CanTakeOver());
}

TEST_F(CommitterTest, ResendIsAckedAgainAndAGapIsNacked) {
  checkpoint::Checkpoint first = NextEpoch();
  ASSERT_EQ(Send(first).committed_epoch, 1u);
  Committer::Reply again = Send(NextEpoch());
  ASSERT_EQ(again.committed_epoch, 2u);
  ++epoch_;  // epoch 3 is lost on the way
  Committer::Reply gap = Send(NextEpoch());
  EXPECT_EQ(gap.message, replication::EncodeNack(3, "out of order"));
  EXPECT_EQ(gap.committed_epoch, 0u);
  EXPECT_EQ(committer_->committed_epoch(), 2u);
}

// A checkpoint whose last page run names a block the VM does not have: its disk writes journal
// fine and its earlier pages decode, and still nothing of it may reach committed state.
TEST_F(CommitterTest, BadCheckpointLeavesCommittedStateUntouched) {
  ASSERT_EQ(Send(NextEpoch({Write(0, 'a')})).committed_epoch, 1u);
  ASSERT_EQ(Send(NextEpoch({Write(4096, 'b')})).committed_epoch, 2u);
  std::unique_ptr<checkpoint::RamImage> before = *committer_->image()->CloneCommitted();
  const std::string disk_before = ReadFile(dir_->File("disk.raw"));
  const std::string device_before = committer_->device_state();
  const uint64_t console_before = console_.end();

  checkpoint::Checkpoint bad = NextEpoch({Write(0, 'X'), Write(8192, 'Y')});
  ASSERT_FALSE(bad.page_runs.empty());
  bad.device_state = std::string("would-be device state") + '\0';
  bad.page_runs.push_back({99, {{0, checkpoint::format::PageEncoding::kRaw, std::string(4096, 'Z')}}});
  Committer::Reply reply = Send(bad);
  Result<replication::AckMessage> nack = replication::DecodeAck(Bytes(reply.message));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(nack->type, replication::MessageType::kNack);
  EXPECT_EQ(nack->epoch, 3u);
  // Refused while committing (the bytes parsed), after its disk writes were journaled.
  EXPECT_NE(nack->reason.find("block 99"), std::string::npos) << nack->reason;
  EXPECT_EQ(reply.committed_epoch, 0u);

  EXPECT_EQ(committer_->committed_epoch(), 2u);
  EXPECT_EQ(committer_->device_state(), device_before);
  EXPECT_EQ(console_.end(), console_before);
  EXPECT_EQ(FirstDifference(ReadFile(dir_->File("disk.raw")), disk_before), -1);
  EXPECT_EQ(standby_.forwarded, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(committer_->status().rejected, 1u);
  const checkpoint::RamImage& image = *committer_->image();
  for (uint32_t block = 0; block < image.blocks().size(); ++block) {
    for (uint64_t offset = 0; offset < image.blocks()[block].used_length; offset += checkpoint::RamImage::kPageBytes) {
      auto now = image.CommittedPage(block, offset);
      auto then = before->CommittedPage(block, offset);
      ASSERT_TRUE(std::equal(now.begin(), now.end(), then.begin())) << "block " << block << " offset " << offset;
    }
  }
  // Bytes that do not parse at all are refused the same way.
  std::string truncated = Message(bad).substr(0, 200);
  EXPECT_EQ(committer_->Receive(Bytes(truncated)).committed_epoch, 0u);
  EXPECT_EQ(committer_->committed_epoch(), 2u);
  EXPECT_EQ(committer_->status().rejected, 2u);
}

TEST_F(CommitterTest, DiskWriteOutsideTheDiskRejectsTheWholeCheckpoint) {
  ASSERT_EQ(Send(NextEpoch()).committed_epoch, 1u);
  const std::string disk_before = ReadFile(dir_->File("disk.raw"));
  Committer::Reply reply = Send(NextEpoch({Write(0, 'X'), Write(kDiskBytes, 'Y')}));
  EXPECT_EQ(reply.committed_epoch, 0u);
  EXPECT_EQ(committer_->committed_epoch(), 1u);
  EXPECT_EQ(FirstDifference(ReadFile(dir_->File("disk.raw")), disk_before), -1);
}

// A crash halfway through applying epoch 3's disk writes: the copy on disk is torn, and the
// journal that Journal() made durable before RAM committed repairs it at the next Open().
TEST_F(CommitterTest, JournalReplayRepairsACrashMidApply) {
  stall_at_epoch_ = 3;
  std::string torn_copy;
  on_mid_apply_ = [&](uint64_t epoch) {
    EXPECT_EQ(epoch, 3u);
    // The "crash": the files as they are at this instant, as a new agent would find them.
    std::filesystem::copy_file(dir_->File("disk.raw"), dir_->File("crash.raw"));
    std::filesystem::copy_file(dir_->File("disk.raw.journal"), dir_->File("crash.raw.journal"));
    torn_copy = ReadFile(dir_->File("crash.raw"));
  };
  MakeCommitter();
  ASSERT_EQ(Send(NextEpoch({Write(0, 'a')})).committed_epoch, 1u);
  ASSERT_EQ(Send(NextEpoch({Write(4096, 'b')})).committed_epoch, 2u);
  ASSERT_EQ(Send(NextEpoch({Write(0, 'c'), Write(8192, 'd')})).committed_epoch, 3u);
  ASSERT_FALSE(torn_copy.empty()) << "the crash point was never reached";
  const std::string committed = ReadFile(dir_->File("disk.raw"));
  ASSERT_NE(FirstDifference(torn_copy, committed), -1) << "the crash point did not tear the copy (the check below would prove nothing)";

  Result<std::unique_ptr<disk::DiskReplica>> reopened = disk::DiskReplica::Open(dir_->File("crash.raw"));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(FirstDifference(ReadFile(dir_->File("crash.raw")), committed), -1);
}

TEST_F(CommitterTest, ANewPairingDiscardsTheOldStandbyFirst) {
  ASSERT_EQ(Send(NextEpoch()).committed_epoch, 1u);
  ASSERT_EQ(Send(NextEpoch()).committed_epoch, 2u);
  // The primary restarts: a new pairing from epoch 1 with a fresh image.
  epoch_ = 0;
  primary_image_ = std::move(*checkpoint::RamImage::Create(checkpoint::testing::SampleBlocks()));
  EXPECT_EQ(Send(NextEpoch()).committed_epoch, 1u);
  EXPECT_EQ(standby_.discarded, 1);
  EXPECT_EQ(standby_.started, 2);
  ExpectSameRam();
}

// The primary ran alone for a while (it released bytes this copy never saw), then paired with
// this secondary again: the new pairing's console starts past the end of this copy, and its
// first checkpoint is committed, not refused as a gap (it once was, nacked forever).
TEST_F(CommitterTest, ANewPairingMayStartPastTheConsoleThisCopyHas) {
  ASSERT_EQ(Send(NextEpoch()).committed_epoch, 1u);
  const uint64_t copied = console_.end();
  epoch_ = 0;
  console_offset_ += 64;  // released by the primary alone
  primary_image_ = std::move(*checkpoint::RamImage::Create(checkpoint::testing::SampleBlocks()));
  Committer::Reply first = Send(NextEpoch());
  EXPECT_EQ(first.committed_epoch, 1u) << first.error;
  EXPECT_EQ(Send(NextEpoch()).committed_epoch, 2u);
  EXPECT_EQ(console_.end(), console_offset_);
  EXPECT_EQ(*console_.ReadFrom(copied + 64, 1000, Deadline::Now()), "epoch 1\nepoch 2\n");
  // Within the pairing a gap is still lost output: the log refuses it, and the checkpoint's
  // other state commits (output is appended once the checkpoint cannot be refused).
  console_offset_ += 5;
  EXPECT_EQ(Send(NextEpoch()).committed_epoch, 3u);
  EXPECT_EQ(console_.end(), console_offset_ - 5 - std::string("epoch 3\n").size());
}

// Issue 16 item 8: a new pairing's first checkpoint is applied into its fresh RAM image before
// the disk copy (the previous pairing's committed state) is touched; a refused image leaves the
// copy as it was instead of cut to zeros by BeginPairing.
TEST_F(CommitterTest, ARefusedNewPairingLeavesThePreviousDiskCopyAlone) {
  ASSERT_EQ(Send(NextEpoch({Write(0, 'a'), Write(8192, 'c')})).committed_epoch, 1u);
  ASSERT_EQ(Send(NextEpoch({Write(4096, 'b')})).committed_epoch, 2u);
  const std::string disk_before = ReadFile(dir_->File("disk.raw"));
  ASSERT_EQ(disk_before.substr(4096, 4), "bbbb");
  // The primary restarts: its first checkpoint parses but cannot be applied (its deltas refer
  // to an epoch nobody has).
  epoch_ = 0;
  primary_image_ = std::move(*checkpoint::RamImage::Create(checkpoint::testing::SampleBlocks()));
  checkpoint::Checkpoint first = NextEpoch({Write(0, 'X')});
  first.base_epoch = 7;
  Committer::Reply reply = Send(first);
  EXPECT_EQ(reply.committed_epoch, 0u);
  EXPECT_NE(reply.error.find("epoch 7"), std::string::npos) << "refused for another reason: " << reply.error;
  EXPECT_EQ(FirstDifference(ReadFile(dir_->File("disk.raw")), disk_before), -1)
      << "the refused pairing changed the previous pairing's disk copy";
}

// A first checkpoint describing another VM than the one this host protects is refused whole.
TEST_F(CommitterTest, FirstCheckpointOfAnotherVmIsRefused) {
  checkpoint::Checkpoint first = NextEpoch();
  qemu::VmDefinition other;
  other.name = "another";
  other.disk.size_bytes = kDiskBytes;
  first.machine_definition_json = other.ToPeerJson().dump();
  EXPECT_EQ(Send(first).committed_epoch, 0u);
  EXPECT_EQ(standby_.started, 0);
  EXPECT_NE(committer_->status().last_error.find("another"), std::string::npos) << committer_->status().last_error;
}

TEST_F(CommitterTest, FirstCheckpointWithoutDefinitionIsRefused) {
  checkpoint::Checkpoint first = NextEpoch();
  first.machine_definition_json.reset();
  EXPECT_EQ(Send(first).committed_epoch, 0u);
  EXPECT_EQ(committer_->image(), nullptr);
  EXPECT_EQ(standby_.started, 0);
  EXPECT_NE(committer_->status().last_error.find("lacks the machine definition"), std::string::npos);
}

}  // namespace
}  // namespace understudy::secondary
