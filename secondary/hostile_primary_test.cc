// The real ft-secondary against a hostile "primary" (this test, over tcp://) and a hostile
// control client (issue 16): each bad input is refused, nothing it asked for happens, and the
// agent keeps serving. Needs no KVM: nothing here may ever start a QEMU.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "checkpoint/checkpoint_codec.h"
#include "common/child_process.h"
#include "control/control_server.h"
#include "replication/agent_protocol.h"
#include "tests/harness/test_guest.h"
#include "transport/channel.h"

namespace understudy::secondary {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

class HostilePrimaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // UNIX socket paths (control.sock) must stay short: a directory under /tmp.
    auto dir = testing::ScratchDir::Create("ut-hostile");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    const std::string kernel = testing::RunfilePath("tests/guests/counter.elf");
    json config = {{"name", "host2"},
                   {"listen", "tcp://127.0.0.1:0"},
                   {"insecure", true},
                   {"runtime_dir", dir_->path() + "/run"},
                   {"image_dir", kernel.substr(0, kernel.rfind('/'))},
                   {"failover", {{"arbiter", "none"}, {"heartbeat_listen", "127.0.0.1:0"}}},
                   // test_hold_acks, the command this test attacks, exists only in test mode.
                   {"test_only", {{"control_commands", true}}}};
    std::filesystem::create_directories(dir_->path() + "/run");
    std::ofstream(dir_->path() + "/secondary.json") << config.dump();
    auto child = ChildProcess::Spawn(
        {testing::RunfilePath("secondary/ft-secondary"), "--config", dir_->path() + "/secondary.json"},
        dir_->path() + "/secondary.log");
    ASSERT_TRUE(child.ok()) << child.status();
    secondary_.emplace(std::move(*child));
    for (auto deadline = std::chrono::steady_clock::now() + 10s; listen_.empty();) {
      Result<json> status = Status();
      if (status.ok() && status->contains("listen")) listen_ = (*status)["listen"].get<std::string>();
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the secondary did not start: " << Log();
      std::this_thread::sleep_for(20ms);
    }
  }

  Result<json> Status() { return control::AgentStatus(dir_->path() + "/run", Deadline::AfterMillis(1000)); }
  std::string Log() {
    std::ifstream in(dir_->path() + "/secondary.log");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void ExpectStillServing() {
    ASSERT_TRUE(secondary_->Running()) << "the secondary died: " << Log();
    Result<json> status = Status();
    ASSERT_TRUE(status.ok()) << status.status() << Log();
  }

  std::optional<testing::ScratchDir> dir_;
  std::optional<ChildProcess> secondary_;
  std::string listen_;
};

TEST_F(HostilePrimaryTest, AControlFlagOfTheWrongTypeIsAnErrorAndTheAgentKeepsServing) {
  Result<json> reply = control::CallControl(dir_->path() + "/run/control.sock",
                                            {{"command", "test_hold_acks"}, {"hold", "x"}}, Deadline::AfterMillis(2000));
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().message().find("\"hold\""), std::string::npos) << reply.status();
  ExpectStillServing();
}

TEST_F(HostilePrimaryTest, AHelloWithANumberForANameAndAVmDefinitionWithExtraArgsAreRefused) {
  transport::ChannelOptions options;
  options.insecure = true;
  Result<std::unique_ptr<transport::Channel>> channel = transport::Dial(listen_, options, Deadline::AfterMillis(5000));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto send = [&](const std::string& message) {
    return (*channel)->Send(std::as_bytes(std::span(message.data(), message.size())), Deadline::AfterMillis(2000));
  };

  // Regression: this hello terminated the agent (nlohmann type_error).
  ASSERT_TRUE(send(std::string(1, static_cast<char>(replication::MessageType::kHello)) + R"({"name": 1})").ok());
  std::this_thread::sleep_for(200ms);
  ExpectStillServing();

  // A first checkpoint whose machine definition asks QEMU to write a file on this host.
  const std::string target = dir_->path() + "/written-by-the-primary";
  json definition = {{"name", "counter"},
                     {"memory_mib", 64},
                     {"kernel", "counter.elf"},
                     {"extra_args", {"-chardev", "file,id=pwn,path=" + target, "-serial", "chardev:pwn"}}};
  checkpoint::Checkpoint first;
  first.epoch = 1;
  first.full = true;
  first.machine_definition_json = definition.dump();
  first.ram_blocks = checkpoint::RamBlockList{{"pc.ram", 64u << 20, std::nullopt}};
  first.stream_info = checkpoint::QemuStreamInfo{2, "pc-i440fx-7.2", {}};
  first.device_state = std::string(1, '\0');  // QEMU's EOF byte alone
  std::string message(1, static_cast<char>(replication::kCheckpointTag));
  message += checkpoint::SerializeCheckpoint(first);
  ASSERT_TRUE(send(message).ok());

  // The secondary answers with a NACK for epoch 1 (after its own hello and heartbeats).
  std::optional<replication::AckMessage> answer;
  for (auto deadline = Deadline::AfterMillis(5000); !answer;) {
    std::vector<std::byte> received;
    ASSERT_TRUE((*channel)->Receive(received, deadline).ok()) << Log();
    Result<replication::AckMessage> ack = replication::DecodeAck(received);
    if (ack.ok()) answer = *ack;
  }
  EXPECT_EQ(answer->type, replication::MessageType::kNack);
  EXPECT_EQ(answer->epoch, 1u);
  EXPECT_NE(answer->reason.find("extra_args"), std::string::npos) << answer->reason;

  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(Exists(target)) << "QEMU ran the primary's command line";
  ExpectStillServing();
  Result<json> status = Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["rejected_checkpoints"], 1);
  EXPECT_EQ((*status)["committed_epoch"], 0);
  EXPECT_EQ((*status)["standby_qemu_pid"], 0) << "a standby was started";
  EXPECT_NE((*status)["last_error"].get<std::string>().find("extra_args"), std::string::npos) << *status;
}

}  // namespace
}  // namespace understudy::secondary
