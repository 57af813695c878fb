// The disk server with a real QEMU: the disk guest's IDE disk is an NBD export served by
// DiskServer from a local image. Every record the guest printed is in the image, and every
// write lands in exactly one sealed generation, in order — the raw material of disk replication.
#include "disk/disk_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>

#include "tests/harness/counter_transcript.h"
#include "tests/harness/require_guest_accelerator.h"
#include "tests/harness/test_guest.h"

namespace understudy::disk {
namespace {

using testing::CounterTranscript;
using testing::ScratchDir;
using testing::TestGuest;

constexpr uint32_t kRecordMagic = 0x52445355u;

TEST(DiskServerTest, TheDiskGuestRunsOnItAndEveryWriteLandsInOneEpoch) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  Result<ScratchDir> dir = ScratchDir::Create("ut-disk-server");
  ASSERT_TRUE(dir.ok());
  const std::string image = dir->path() + "/disk.raw";
  { UniqueFd created(::open(image.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  ASSERT_EQ(::truncate(image.c_str(), 4 << 20), 0);
  auto server = DiskServer::Start(image, dir->path() + "/disk.sock");
  ASSERT_TRUE(server.ok()) << server.status();
  // The primary's output-triggered checkpoints hear of every recorded write.
  std::atomic<size_t> observed_writes{0};
  (*server)->SetWriteObserver([&observed_writes] { ++observed_writes; });

  qemu::VmDefinition definition = testing::DiskGuestDefinition();
  definition.disk.size_bytes = (*server)->size_bytes();
  definition.disk.nbd_socket = (*server)->socket_path();
  auto guest = TestGuest::Start(definition, "disk-on-nbd");
  ASSERT_TRUE(guest.ok()) << guest.status();

  CounterTranscript transcript;
  std::vector<DiskDelta> epochs;
  Deadline deadline = Deadline::AfterMillis(60000);
  while (transcript.lines_observed() < 40) {
    Result<std::string> line = (*guest)->console().ReadLine(deadline);
    ASSERT_TRUE(line.ok()) << line.status() << "; QEMU log: " << (*guest)->process().Log();
    transcript.Observe(*line);
    if (transcript.lines_observed() % 10 == 0) epochs.push_back((*server)->Seal());
  }
  ASSERT_TRUE((*guest)->process().qmp().Execute("stop", Deadline::AfterMillis(5000)).ok());
  epochs.push_back((*server)->Seal());
  (*server)->SetWriteObserver(nullptr);
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
  size_t sealed_writes = 0;
  for (const DiskDelta& epoch : epochs) sealed_writes += epoch.writes.size();
  EXPECT_GT(sealed_writes, 0u);
  EXPECT_EQ(observed_writes.load(), sealed_writes) << "the write observer missed or repeated writes";

  // Replay every epoch's writes in order onto an empty disk: the result is the image.
  std::string replayed(4 << 20, '\0');
  std::map<uint32_t, size_t> epoch_of_record;
  size_t flushes = 0;
  for (size_t e = 0; e < epochs.size(); ++e) {
    flushes += epochs[e].flushed ? 1 : 0;
    for (const DiskWrite& write : epochs[e].writes) {
      ASSERT_LE(write.offset + write.length, replayed.size());
      if (write.zero) {
        std::memset(replayed.data() + write.offset, 0, write.length);
        continue;
      }
      std::memcpy(replayed.data() + write.offset, write.data.data(), write.length);
      for (uint64_t at = write.offset; at < write.offset + write.length; at += 512) {
        uint32_t magic, number;
        std::memcpy(&magic, write.data.data() + (at - write.offset), 4);
        std::memcpy(&number, write.data.data() + (at - write.offset) + 4, 4);
        if (magic == kRecordMagic) {
          EXPECT_FALSE(epoch_of_record.count(number)) << "record " << number << " written twice";
          EXPECT_EQ(at, uint64_t{number} * 512) << "record " << number << " in the wrong sector";
          epoch_of_record[number] = e;
        }
      }
    }
  }
  std::string on_disk(4 << 20, '\0');
  UniqueFd fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::pread(fd.get(), on_disk.data(), on_disk.size(), 0), static_cast<ssize_t>(on_disk.size()));
  EXPECT_TRUE(replayed == on_disk) << "the sealed epochs do not add up to the image";
  // Every printed record was written, in an epoch no later than the one it was printed in.
  for (uint32_t record = 1; record <= transcript.last_number(); ++record) {
    ASSERT_TRUE(epoch_of_record.count(record)) << "printed record " << record << " was never written";
    EXPECT_LE(epoch_of_record[record], (record - 1) / 10) << "record " << record;
  }
  EXPECT_GT(flushes, 0u) << "the guest flushes after every write";
  std::printf("%zu epochs, %zu records, %llu NBD requests, %llu bytes written\n", epochs.size(), epoch_of_record.size(),
              static_cast<unsigned long long>((*server)->requests()),
              static_cast<unsigned long long>((*server)->bytes_written()));
}

}  // namespace
}  // namespace understudy::disk
