// QmpClient and QemuProcess against a real QEMU running the counter guest (KVM or the TCG vehicle), plus
// the three ways a launch can fail, each asserted by its message.
#include "qemu/qmp_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fstream>

#include "common/fd_io.h"
#include "qemu/qemu_process.h"
#include "tests/harness/require_guest_accelerator.h"
#include "tests/harness/test_guest.h"

namespace understudy::qemu {
namespace {

using ::understudy::testing::ScratchDir;
using ::understudy::testing::TestGuest;

TEST(QmpClientTest, QueryStatusStopContAndEvents) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  auto guest = TestGuest::StartCounter({}, "qmp");
  ASSERT_TRUE(guest.ok()) << guest.status();
  QmpClient& qmp = (*guest)->process().qmp();
  EXPECT_EQ(qmp.qemu_version().substr(0, 4), "7.2.");

  auto status = qmp.Execute("query-status", Deadline::AfterMillis(5000));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ((*status)["status"], "running");
  // TestGuest::Start resumed the paused QEMU: that RESUME event must be queued.
  EXPECT_TRUE(qmp.WaitForEvent("RESUME", Deadline::AfterMillis(5000)).ok());

  ASSERT_TRUE(qmp.Execute("stop", Deadline::AfterMillis(5000)).ok());
  auto stop = qmp.WaitForEvent("STOP", Deadline::AfterMillis(5000));
  ASSERT_TRUE(stop.ok()) << stop.status();
  EXPECT_GT(stop->timestamp, 0);
  status = qmp.Execute("query-status", Deadline::AfterMillis(5000));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["status"], "paused");

  ASSERT_TRUE(qmp.Execute("cont", Deadline::AfterMillis(5000)).ok());
  EXPECT_TRUE(qmp.WaitForEvent("RESUME", Deadline::AfterMillis(5000)).ok());
  status = qmp.Execute("query-status", Deadline::AfterMillis(5000));
  EXPECT_EQ((*status)["status"], "running");
}

TEST(QmpClientTest, CommandErrorsCarryQemusClassAndDescription) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  auto guest = TestGuest::StartCounter({}, "qmperr");
  ASSERT_TRUE(guest.ok()) << guest.status();
  auto reply = (*guest)->process().qmp().Execute("no-such-command", Deadline::AfterMillis(5000));
  EXPECT_EQ(reply.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(reply.status().message().find("QMP command 'no-such-command' failed (CommandNotFound)"),
            std::string::npos)
      << reply.status();
}

TEST(QmpClientTest, GetfdRoundTripHandsQemuARealDescriptor) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  auto guest = TestGuest::StartCounter({}, "getfd");
  ASSERT_TRUE(guest.ok()) << guest.status();
  QmpClient& qmp = (*guest)->process().qmp();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]), theirs(pair[1]);

  ASSERT_TRUE(qmp.PassFd("probe", theirs.get(), Deadline::AfterMillis(5000)).ok());
  // QEMU now holds a descriptor named "probe": closing it succeeds exactly once.
  EXPECT_TRUE(qmp.Execute("closefd", {{"fdname", "probe"}}, Deadline::AfterMillis(5000)).ok());
  auto again = qmp.Execute("closefd", {{"fdname", "probe"}}, Deadline::AfterMillis(5000));
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("probe"), std::string::npos) << again.status();

  // getfd without a descriptor is refused by QEMU, and the error says so.
  auto missing = qmp.Execute("getfd", {{"fdname", "nothing"}}, Deadline::AfterMillis(5000));
  EXPECT_FALSE(missing.ok());
}

TEST(QemuProcessTest, MissingBinaryIsNamed) {
  auto dir = ScratchDir::Create("ut-nobin");
  ASSERT_TRUE(dir.ok());
  LaunchOptions options;
  options.runtime_dir = dir->path();
  options.qemu_binary = "qemu-system-understudy-nonexistent";
  auto process = QemuProcess::Launch(VmDefinition{}, options);
  EXPECT_EQ(process.status().code(), Status::Code::kNotFound);
  EXPECT_NE(process.status().message().find("QEMU binary 'qemu-system-understudy-nonexistent' not found on PATH"),
            std::string::npos)
      << process.status();
}

TEST(QemuProcessTest, SilentQmpTimesOutAtTheDeadline) {
  auto dir = ScratchDir::Create("ut-silent");
  ASSERT_TRUE(dir.ok());
  // A stand-in "QEMU" that starts and never opens its QMP socket.
  std::string fake = dir->path() + "/fake-qemu";
  std::ofstream(fake) << "#!/bin/sh\nexec sleep 30\n";
  ::chmod(fake.c_str(), 0755);
  LaunchOptions options;
  options.runtime_dir = dir->path();
  options.qemu_binary = fake;
  options.qmp_timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto process = QemuProcess::Launch(VmDefinition{}, options);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(process.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_NE(process.status().message().find("QMP did not answer within 300 ms"), std::string::npos)
      << process.status();
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(QemuProcessTest, EarlyExitReportsQemusStderr) {
  auto dir = ScratchDir::Create("ut-early");
  ASSERT_TRUE(dir.ok());
  VmDefinition definition;
  LaunchOptions options;
  options.extra_args = {"-understudy-no-such-option"};
  options.runtime_dir = dir->path();
  auto process = QemuProcess::Launch(definition, options);
  EXPECT_EQ(process.status().code(), Status::Code::kBroken);
  EXPECT_NE(process.status().message().find("QEMU exited with status 1 during start-up"), std::string::npos)
      << process.status();
  EXPECT_NE(process.status().message().find("-understudy-no-such-option: invalid option"), std::string::npos)
      << process.status();
}

// Nothing starts from a definition that fails validation, however it was built.
TEST(QemuProcessTest, AnInvalidDefinitionIsRefusedBeforeQemuStarts) {
  auto dir = ScratchDir::Create("ut-invalid");
  ASSERT_TRUE(dir.ok());
  VmDefinition definition;
  definition.nic.kind = NicBackend::Kind::kStreamUnixServer;
  definition.nic.path = dir->path() + "/net.sock";
  definition.nic.model = "e1000,romfile=" + dir->path() + "/rom";
  LaunchOptions options;
  options.runtime_dir = dir->path();
  auto process = QemuProcess::Launch(definition, options);
  EXPECT_EQ(process.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(process.status().message().rfind("nic.model: ", 0), 0u) << process.status();
  struct stat info;
  EXPECT_NE(::stat((dir->path() + "/qemu.log").c_str(), &info), 0) << "QEMU was started";
}

TEST(QemuProcessTest, DestroyingTheProcessKillsAndReapsQemu) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  pid_t pid;
  {
    auto guest = TestGuest::StartCounter({}, "reap");
    ASSERT_TRUE(guest.ok()) << guest.status();
    pid = (*guest)->process().pid();
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  // Reaped, not a zombie: the pid no longer exists for us.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace understudy::qemu
