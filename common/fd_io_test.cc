#include "common/fd_io.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <vector>

namespace understudy {
namespace {

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
  UniqueFd a, b;
};

TEST(FdIoTest, ReadTimesOutOnSilentPeer) {
  SocketPair pair;
  std::byte buffer[4];
  auto start = std::chrono::steady_clock::now();
  Result<size_t> result = ReadSome(pair.a.get(), buffer, Deadline::AfterMillis(50));
  EXPECT_EQ(result.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(45));
}

TEST(FdIoTest, ReadExactlyReportsHowFarItGotWhenPeerCloses) {
  SocketPair pair;
  ASSERT_TRUE(WriteAll(pair.b.get(), "abc", Deadline::AfterMillis(1000)).ok());
  pair.b.reset();
  std::vector<std::byte> buffer(8);
  Status status = ReadExactly(pair.a.get(), buffer, Deadline::AfterMillis(1000));
  EXPECT_EQ(status.code(), Status::Code::kPeerClosed);
  EXPECT_NE(status.message().find("read 3 of 8 bytes"), std::string::npos) << status;
}

TEST(FdIoTest, WriteToClosedPeerIsBrokenNotSignal) {
  SocketPair pair;
  pair.b.reset();
  Status status = WriteAll(pair.a.get(), "hello", Deadline::AfterMillis(1000));
  EXPECT_EQ(status.code(), Status::Code::kBroken) << status;
}

TEST(FdIoTest, WriteTimesOutWhenPeerDoesNotRead) {
  SocketPair pair;
  std::vector<std::byte> big(16 << 20);
  Status status = WriteAll(pair.a.get(), big, Deadline::AfterMillis(50));
  EXPECT_EQ(status.code(), Status::Code::kDeadlineExceeded) << status;
  EXPECT_NE(status.message().find("of 16777216 bytes"), std::string::npos) << status;
}

TEST(FdIoTest, PassedDescriptorArrives) {
  SocketPair pair, passed;
  ASSERT_TRUE(SendWithFd(pair.a.get(), "x", passed.a.get(), Deadline::AfterMillis(1000)).ok());
  char byte;
  iovec data{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ASSERT_EQ(::recvmsg(pair.b.get(), &message, 0), 1);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  ASSERT_NE(header, nullptr);
  int received;
  std::memcpy(&received, CMSG_DATA(header), sizeof(int));
  UniqueFd received_fd(received);
  // What goes into the received copy comes out of the other end of the passed pair.
  ASSERT_TRUE(WriteAll(received_fd.get(), "ping", Deadline::AfterMillis(1000)).ok());
  std::vector<std::byte> buffer(4);
  ASSERT_TRUE(ReadExactly(passed.b.get(), buffer, Deadline::AfterMillis(1000)).ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buffer.data()), 4), "ping");
}

TEST(FdIoTest, ConnectGivesUpAtDeadlineWhenNobodyListens) {
  Result<UniqueFd> fd = ConnectUnixSocket("/tmp/understudy-no-such-socket", Deadline::AfterMillis(50));
  EXPECT_EQ(fd.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_NE(fd.status().message().find("/tmp/understudy-no-such-socket"), std::string::npos);
}

}  // namespace
}  // namespace understudy
