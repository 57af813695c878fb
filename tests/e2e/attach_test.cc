// ft-primary can protect a QEMU it did not start: it attaches through the VM's QMP and serial
// sockets, and a failover afterwards still shows the observer a continuous sequence.
#include <gtest/gtest.h>

#include "qemu/qemu_process.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"

namespace understudy::testing {
namespace {

TEST(AttachTest, ProtectsARunningQemuAndFailsOverContinuously) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  auto dir = ScratchDir::Create("ut-attach");
  ASSERT_TRUE(dir.ok());
  // "Someone else's" QEMU: the counter guest, with a serial socket and a QMP socket for the agent.
  CounterGuestOptions guest{.pages = 64};
  qemu::VmDefinition vm = CounterGuestDefinition(guest, dir->path() + "/serial.sock");
  qemu::LaunchOptions launch;
  launch.runtime_dir = dir->path();
  std::string agent_qmp = dir->path() + "/agent-qmp.sock";
  launch.extra_args = {"-qmp", "unix:" + agent_qmp + ",server=on,wait=off"};
  auto qemu = qemu::QemuProcess::Launch(vm, launch);
  ASSERT_TRUE(qemu.ok()) << qemu.status();

  AgentPairOptions options;
  options.guest = guest;
  options.attach_qmp_socket = agent_qmp;
  options.attach_serial_socket = dir->path() + "/serial.sock";
  auto pair = AgentPair::Start(options, "attach");
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_NE((*pair)->PrimaryLog().find("attached to a running QEMU"), std::string::npos) << (*pair)->PrimaryLog();

  console::ConsoleFollower follower = (*pair)->Follower();
  CounterTranscript transcript;
  // The agent joined a guest that was already counting: skip a possibly partial first line.
  ASSERT_TRUE(follower.ReadLine(Deadline::AfterMillis(20000)).ok());
  Result<std::string> first = follower.ReadLine(Deadline::AfterMillis(20000));
  ASSERT_TRUE(first.ok()) << first.status();
  transcript.ExpectNext(std::stoull(*first));
  transcript.Observe(*first);
  while (transcript.lines_observed() < 8) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(20000));
    ASSERT_TRUE(line.ok()) << line.status();
    transcript.Observe(*line);
  }

  // Kill the primary's host: its agent and the QEMU it attached to.
  uint64_t before = transcript.last_number();
  (*qemu)->Kill();
  (*pair)->KillPrimary();
  while (transcript.last_number() < before + 5) {
    Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(20000));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << (*pair)->SecondaryLog();
    transcript.Observe(*line);
  }
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
}

}  // namespace
}  // namespace understudy::testing
