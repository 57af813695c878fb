// The control socket answers this user (and root) only: created 0600, and a caller of another
// uid — even one that can reach the socket file — is refused by its peer credentials before
// any handler runs, while the server goes on serving.
#include "control/control_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include "common/test_scratch_dir.h"

namespace understudy::control {
namespace {

using nlohmann::json;

class ControlAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TestScratchDir> scratch = TestScratchDir::Create("control");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_.emplace(std::move(*scratch));
    ::chmod(scratch_->path().c_str(), 0755);  // reachable by other users, so the socket's own guard is what is tested
    socket_ = scratch_->File("control.sock");
    Result<std::unique_ptr<ControlServer>> server = ControlServer::Start(socket_, {{"status", [this](const json&) -> Result<json> {
                                                                                      ++handled_;
                                                                                      return json{{"state", "protected"}};
                                                                                    }}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // Runs `status` as `uid` in a child process; returns what the child saw, as an exit code:
  // 0 answered, 1 connect refused by the file system, 2 refused by the server, 3 other.
  int StatusAsUid(uid_t uid) {
    pid_t child = ::fork();
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(uid) != 0) ::_exit(3);
      Result<json> reply = CallControl(socket_, {{"command", "status"}}, Deadline::AfterMillis(2000));
      if (reply.ok()) ::_exit(0);
      if (reply.status().message().find("Permission denied") != std::string::npos) ::_exit(1);
      if (reply.status().message().find("uid " + std::to_string(uid) + " may not use") != std::string::npos) ::_exit(2);
      ::_exit(3);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::optional<TestScratchDir> scratch_;
  std::string socket_;
  std::unique_ptr<ControlServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(ControlAccessTest, TheSocketIsCreatedOwnerOnly) {
  struct stat info {};
  ASSERT_EQ(::stat(socket_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  Result<json> reply = CallControl(socket_, {{"command", "status"}}, Deadline::AfterMillis(2000));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ((*reply)["state"], "protected");
}

TEST_F(ControlAccessTest, AnotherUidIsRefusedEvenWhenItCanReachTheSocket) {
  if (::geteuid() != 0) GTEST_SKIP() << "skipped: needs root to act as another uid";
  EXPECT_EQ(StatusAsUid(65534), 1) << "mode 0600 must keep other users out of the socket file";
  ::chmod(socket_.c_str(), 0666);  // an operator mistake: the file system no longer guards it
  EXPECT_EQ(StatusAsUid(65534), 2) << "the peer-credential check must refuse another uid";
  EXPECT_EQ(handled_.load(), 0) << "a refused caller reached a handler";
  // Negative control of the oracle: this user is still served, by the same server.
  Result<json> reply = CallControl(socket_, {{"command", "status"}}, Deadline::AfterMillis(2000));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(handled_.load(), 1);
}

}  // namespace
}  // namespace understudy::control
