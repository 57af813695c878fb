// The secondary's disk copy changes by whole committed epochs only, and a crash at any point
// of a commit leaves it at exactly one epoch: a complete journal is replayed, a torn one
// discarded.
#include "disk/disk_replica.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/harness/test_guest.h"

namespace understudy::disk {
namespace {

using checkpoint::DiskWrite;

std::string Contents(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  std::string text(1 << 20, '\0');
  ssize_t got = ::pread(fd, text.data(), text.size(), 0);
  ::close(fd);
  text.resize(got < 0 ? 0 : static_cast<size_t>(got));
  return text;
}

class DiskReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::ScratchDir::Create("ut-disk-replica");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() + "/copy.raw";
    auto replica = DiskReplica::Open(path_);
    ASSERT_TRUE(replica.ok()) << replica.status();
    ASSERT_TRUE((*replica)->BeginPairing(1 << 20, "").ok());
    ASSERT_TRUE((*replica)->Journal(1, {{0, 512, false, std::string(512, 'a')}, {4096, 1024, false, std::string(1024, 'b')}}).ok());
    ASSERT_TRUE((*replica)->Apply().ok());
    committed_ = Contents(path_);
  }

  std::optional<testing::ScratchDir> dir_;
  std::string path_;
  std::string committed_;  // the copy after epoch 1
};

TEST_F(DiskReplicaTest, AppliedEpochsLandInOrderAndZeroesClear) {
  auto replica = DiskReplica::Open(path_);
  ASSERT_TRUE(replica.ok());
  ASSERT_TRUE((*replica)->Journal(2, {{0, 512, true, ""}, {100, 10, false, "0123456789"}}).ok());
  ASSERT_TRUE((*replica)->Apply().ok());
  std::string now = Contents(path_);
  EXPECT_EQ(now.substr(0, 100), std::string(100, '\0'));
  EXPECT_EQ(now.substr(100, 10), "0123456789");
  EXPECT_EQ(now.substr(4096, 1024), std::string(1024, 'b'));
}

TEST_F(DiskReplicaTest, ACrashAfterJournalingIsReplayedAtOpen) {
  {
    auto replica = DiskReplica::Open(path_);
    ASSERT_TRUE(replica.ok());
    ASSERT_TRUE((*replica)->Journal(2, {{8192, 512, false, std::string(512, 'c')}}).ok());
    // "Crash": the replica goes away before Apply().
  }
  EXPECT_EQ(Contents(path_), committed_) << "journaling alone must not touch the copy";
  auto reopened = DiskReplica::Open(path_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Contents(path_).substr(8192, 512), std::string(512, 'c')) << "the complete journal was not replayed";
}

TEST_F(DiskReplicaTest, ATornJournalIsDiscardedWhole) {
  {
    auto replica = DiskReplica::Open(path_);
    ASSERT_TRUE(replica.ok());
    ASSERT_TRUE((*replica)->Journal(2, {{8192, 4096, false, std::string(4096, 'd')}}).ok());
  }
  // The crash hit while journaling: only part of the record reached the disk.
  ASSERT_EQ(::truncate((path_ + ".journal").c_str(), 2000), 0);
  auto reopened = DiskReplica::Open(path_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Contents(path_), committed_) << "a torn epoch reached the copy";
}

TEST_F(DiskReplicaTest, AWriteOutsideTheDiskIsRejectedBeforeAnythingIsWritten) {
  auto replica = DiskReplica::Open(path_);
  ASSERT_TRUE(replica.ok());
  Status status = (*replica)->Journal(2, {{0, 512, false, std::string(512, 'e')}, {(1 << 20) - 100, 512, false, std::string(512, 'f')}});
  EXPECT_EQ(status.code(), Status::Code::kCorruption) << status;
  EXPECT_NE(status.message().find("outside the 1048576-byte disk"), std::string::npos) << status;
  ASSERT_TRUE((*replica)->Apply().ok());
  EXPECT_EQ(Contents(path_), committed_);
}

TEST_F(DiskReplicaTest, APairingNamesItsLineageOnlyOnceItsCopyIsComplete) {
  auto replica = DiskReplica::Open(path_);
  ASSERT_TRUE(replica.ok());
  ASSERT_TRUE((*replica)->FinishPairing("lineage-a").ok());
  EXPECT_EQ((*replica)->lineage_record().lineage, "lineage-a");

  // A resync against another lineage is refused and leaves the copy and its name alone.
  Status refused = (*replica)->BeginPairing(1 << 20, "lineage-b");
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("holds lineage 'lineage-a'"), std::string::npos) << refused;
  EXPECT_EQ((*replica)->lineage_record().lineage, "lineage-a");

  // A resync against its own lineage keeps the content; the copy matches nothing until done.
  ASSERT_TRUE((*replica)->BeginPairing(1 << 20, "lineage-a").ok());
  EXPECT_EQ((*replica)->lineage_record().lineage, "");
  EXPECT_EQ(Contents(path_), committed_);
  ASSERT_TRUE((*replica)->Journal(1, {{0, 512, true, ""}}).ok());
  ASSERT_TRUE((*replica)->Apply().ok());
  ASSERT_TRUE((*replica)->FinishPairing("lineage-c").ok());
  EXPECT_EQ(DiskReplica::Open(path_).value()->lineage_record().lineage, "lineage-c");
  EXPECT_EQ(Contents(path_).substr(0, 512), std::string(512, '\0'));
}

}  // namespace
}  // namespace understudy::disk
