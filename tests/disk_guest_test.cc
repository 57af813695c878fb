// The disk guest (tests/guests/disk_writer.c) on a local raw disk (KVM or the TCG vehicle): it prints 1, 2,
// 3, ... as records land on the disk, the image afterwards holds exactly the records it
// printed (or the one it was writing), and — the verifier's teeth — booting it again on a disk
// that already holds records (memory says 0, disk says more) prints "VERIFY FAILED".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "tests/harness/counter_transcript.h"
#include "tests/harness/require_guest_accelerator.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {
namespace {

constexpr uint32_t kRecordMagic = 0x52445355u;

std::vector<std::string> DiskArgs(const std::string& image) {
  return {"-drive", "file=" + image + ",format=raw,if=ide,index=0,media=disk,cache=writeback"};
}

// How many consecutive records (from sector 1) the image holds.
uint32_t RecordsOnDisk(const std::string& image) {
  int fd = ::open(image.c_str(), O_RDONLY);
  uint32_t count = 0;
  uint32_t sector[128];
  while (::pread(fd, sector, sizeof(sector), static_cast<off_t>(count + 1) * 512) == sizeof(sector) &&
         sector[0] == kRecordMagic && sector[1] == count + 1) {
    ++count;
  }
  ::close(fd);
  return count;
}

TEST(DiskGuestTest, WritesNumberedRecordsAndCatchesADiskAheadOfItsMemory) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  Result<ScratchDir> dir = ScratchDir::Create("ut-disk-guest");
  ASSERT_TRUE(dir.ok());
  const std::string image = dir->path() + "/disk.raw";
  ASSERT_EQ(::truncate((::close(::open(image.c_str(), O_CREAT | O_WRONLY, 0600)), image.c_str()), 4 << 20), 0);

  uint64_t printed = 0;
  {
    Result<std::unique_ptr<TestGuest>> guest = TestGuest::Start(DiskGuestDefinition(), "disk-guest", StartMode::kRun, DiskArgs(image));
    ASSERT_TRUE(guest.ok()) << guest.status();
    CounterTranscript transcript;
    Deadline deadline = Deadline::AfterMillis(60000);
    while (transcript.lines_observed() < 30) {
      Result<std::string> line = (*guest)->console().ReadLine(deadline);
      ASSERT_TRUE(line.ok()) << line.status() << "; QEMU log: " << (*guest)->process().Log();
      transcript.Observe(*line);
    }
    EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
    printed = transcript.last_number();
    // Stop the guest where it is, then look at its disk.
    ASSERT_TRUE((*guest)->process().qmp().Execute("stop", Deadline::AfterMillis(5000)).ok());
  }
  uint32_t on_disk = RecordsOnDisk(image);
  std::printf("printed %llu records, %u on the disk\n", static_cast<unsigned long long>(printed), on_disk);
  EXPECT_GE(on_disk, printed) << "a printed record is not on the disk";
  EXPECT_LE(on_disk, printed + 2) << "the disk holds records the guest never got to";

  // Boot again on the same disk: memory says 0 records, the disk says more.
  Result<std::unique_ptr<TestGuest>> again = TestGuest::Start(DiskGuestDefinition(), "disk-guest-again", StartMode::kRun, DiskArgs(image));
  ASSERT_TRUE(again.ok()) << again.status();
  Result<std::string> verdict = (*again)->console().ReadLine(Deadline::AfterMillis(60000));
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_EQ(verdict->rfind("VERIFY FAILED: disk is ahead of memory", 0), 0u) << *verdict;
  std::printf("second boot: %s\n", verdict->c_str());
}

}  // namespace
}  // namespace understudy::testing
