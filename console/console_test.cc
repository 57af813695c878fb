#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "common/test_poll.h"
#include "common/test_scratch_dir.h"
#include "console/console_follower.h"
#include "console/console_server.h"
#include "console/released_log.h"

namespace understudy::console {
namespace {

TEST(ReleasedLogTest, OverlapsAreDroppedAndGapsRefused) {
  ReleasedLog log;
  ASSERT_TRUE(log.Append(0, "12\n").ok());
  ASSERT_TRUE(log.Append(1, "2\n3\n").ok());  // re-release of bytes 1-2, then new bytes
  EXPECT_EQ(log.end(), 5u);
  EXPECT_EQ(*log.ReadFrom(0, 100, Deadline::Now()), "12\n3\n");
  Status gap = log.Append(9, "x");
  EXPECT_EQ(gap.code(), Status::Code::kInternal);
  EXPECT_NE(gap.message().find("4 bytes would be lost"), std::string::npos);
  EXPECT_EQ(log.ReadFrom(5, 10, Deadline::AfterMillis(20)).status().code(), Status::Code::kDeadlineExceeded);
}

TEST(ReleasedLogTest, ANewPairingRestartsTheCopyOnlyOutsideWhatItKeeps) {
  ReleasedLog log;
  ASSERT_TRUE(log.Append(0, "ab").ok());
  ASSERT_TRUE(log.RestartAt(1).ok());  // inside what it has: nothing changes
  EXPECT_EQ(*log.ReadFrom(0, 10, Deadline::Now()), "ab");
  ASSERT_TRUE(log.RestartAt(66).ok());  // the owner released 2..65 alone
  EXPECT_EQ(log.end(), 66u);
  EXPECT_EQ(log.ReadFrom(0, 10, Deadline::Now()).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(log.Append(66, "cd").ok());
  EXPECT_EQ(*log.ReadFrom(66, 10, Deadline::Now()), "cd");
  // A copy placed wrongly (far ahead) is placed again by the next pairing, not stuck there.
  ASSERT_TRUE(log.RestartAt(4).ok());
  ASSERT_TRUE(log.Append(4, "ef").ok());
  EXPECT_EQ(*log.ReadFrom(4, 10, Deadline::Now()), "ef");
  EXPECT_EQ(log.RestartAt(uint64_t{1} << 62).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log.end(), 6u);
}

TEST(ReleasedLogTest, KeepsOnlyItsCapacity) {
  ReleasedLog log(4);
  ASSERT_TRUE(log.Append(0, "abcdef").ok());
  EXPECT_EQ(log.ReadFrom(0, 10, Deadline::Now()).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(*log.ReadFrom(2, 10, Deadline::Now()), "cdef");
}

TEST(ConsoleFollowerTest, FollowsToTheOtherAgentAndShowsEveryByteOnce) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("console");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  const std::string& dir = scratch->path();
  ReleasedLog old_owner, new_owner;
  auto first = ConsoleServer::Start(dir + "/a.sock", old_owner);
  auto second = ConsoleServer::Start(dir + "/b.sock", new_owner);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(old_owner.Append(0, "1\n2\n3\n").ok());

  ConsoleFollower follower({dir + "/a.sock", dir + "/b.sock"});
  EXPECT_EQ(*follower.ReadLine(Deadline::AfterMillis(2000)), "1");
  EXPECT_EQ(*follower.ReadLine(Deadline::AfterMillis(2000)), "2");
  EXPECT_EQ(*follower.ReadLine(Deadline::AfterMillis(2000)), "3");

  // The old owner dies; the new one re-releases from an older offset and continues.
  (*first)->Stop();
  old_owner.Close();
  ASSERT_TRUE(new_owner.Append(0, "1\n2\n3\n4\n").ok());
  EXPECT_EQ(*follower.ReadLine(Deadline::AfterMillis(2000)), "4");
  EXPECT_EQ(follower.switches(), 1);
  EXPECT_EQ(follower.offset(), 8u);
  (*second)->Stop();
}

// Clients that connect and leave in a loop (a follower asking for bytes the log no longer
// keeps does exactly that) leave no threads behind, and no more than kMaxReaders run at once.
TEST(ConsoleServerTest, ReadersThatLeaveAreJoinedAndTheirNumberIsCapped) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("console-readers");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  ReleasedLog log(4);
  ASSERT_TRUE(log.Append(0, "abcdef").ok());  // keeps "cdef": offset 0 is gone
  auto server = ConsoleServer::Start(scratch->File("c.sock"), log);
  ASSERT_TRUE(server.ok()) << server.status();
  auto connect = [&]() -> UniqueFd {
    Result<UniqueFd> fd = ConnectUnixSocket(scratch->File("c.sock"), Deadline::AfterMillis(2000));
    EXPECT_TRUE(fd.ok()) << fd.status();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  };
  // The server ends the connection without sending a byte.
  auto closed_by_server = [](const UniqueFd& fd) {
    std::byte byte[1];
    return ReadSome(fd.get(), byte, Deadline::AfterMillis(5000)).status().code() == Status::Code::kPeerClosed;
  };
  auto ask = [](const UniqueFd& fd, uint64_t offset) {
    std::string request;
    AppendLittleEndian<uint64_t>(request, offset);
    EXPECT_TRUE(WriteAll(fd.get(), request, Deadline::AfterMillis(2000)).ok());
  };
  for (int i = 0; i < 200; ++i) {
    UniqueFd fd = connect();
    ask(fd, 0);  // too old: the server closes
    EXPECT_TRUE(closed_by_server(fd));
  }
  EXPECT_TRUE(PollUntil([&] { return (*server)->reader_threads() == 0; }, std::chrono::seconds(5)))
      << (*server)->reader_threads() << " reader threads left behind";
  // Readers that stay (waiting for bytes) count against the cap; one more is refused.
  std::vector<UniqueFd> staying;
  for (size_t i = 0; i < ConsoleServer::kMaxReaders; ++i) {
    staying.push_back(connect());
    ask(staying.back(), 6);  // the next byte: they wait
  }
  ASSERT_TRUE(PollUntil([&] { return (*server)->reader_threads() == ConsoleServer::kMaxReaders; }, std::chrono::seconds(5)));
  UniqueFd refused = connect();
  EXPECT_TRUE(closed_by_server(refused)) << "a reader beyond the cap was served";
  (*server)->Stop();
}

}  // namespace
}  // namespace understudy::console
