// The fake QMP server keeps the parts of QEMU 7.2's QMP behaviour that its users' oracles rely
// on: the greeting, capabilities negotiation first, ids echoed, `getfd` needing a descriptor,
// and the test's answers passed through unchanged.
#include "qemu/testing/fake_qmp_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <string>

#include "common/fd_io.h"
#include "common/test_scratch_dir.h"
#include "qemu/qmp_client.h"

namespace understudy::qemu::testing {
namespace {

using nlohmann::json;

Deadline Soon() { return Deadline::AfterMillis(10000); }

class FakeQmpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TestScratchDir> scratch = TestScratchDir::Create("fake-qmp");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_ = std::make_unique<TestScratchDir>(std::move(*scratch));
  }
  std::string SocketPath() const { return scratch_->File("qmp.sock"); }
  void Start(FakeQmpServer::Responder responder) {
    Result<std::unique_ptr<FakeQmpServer>> server = FakeQmpServer::Start(SocketPath(), std::move(responder), Soon());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::unique_ptr<TestScratchDir> scratch_;
  std::unique_ptr<FakeQmpServer> server_;
};

TEST_F(FakeQmpServerTest, GreetsAsQemu72AndPassesTheRespondersAnswersThrough) {
  Start([](const std::string& command, const json& arguments) {
    if (command == "query-status") return QmpReturn({{"status", "running"}});
    return QmpError("refused " + arguments.value("why", std::string("?")));
  });
  Result<std::unique_ptr<QmpClient>> qmp = QmpClient::Connect(SocketPath(), Soon());
  ASSERT_TRUE(qmp.ok()) << qmp.status();
  EXPECT_EQ((*qmp)->qemu_version(), "7.2.22");

  Result<json> status = (*qmp)->Execute("query-status", Soon());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, json({{"status", "running"}}));
  Result<json> refused = (*qmp)->Execute("stop", {{"why", "for the test"}}, Soon());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "QMP command 'stop' failed (GenericError): refused for the test");

  ASSERT_TRUE(server_->Stop().ok());
  std::vector<ReceivedCommand> commands = server_->commands();
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_EQ(commands[0].name, "qmp_capabilities");
  EXPECT_EQ(commands[1].name, "query-status");
  EXPECT_EQ(commands[1].arguments, json::object());
  EXPECT_EQ(commands[2].name, "stop");
  EXPECT_EQ(commands[2].arguments, json({{"why", "for the test"}}));
}

TEST_F(FakeQmpServerTest, GetfdNeedsADescriptorAndRecordsWhichFileItWas) {
  int responder_calls = 0;  // read after Stop() has joined the server thread
  Start([&responder_calls](const std::string&, const json&) {
    ++responder_calls;
    return QmpReturn();
  });
  Result<std::unique_ptr<QmpClient>> qmp = QmpClient::Connect(SocketPath(), Soon());
  ASSERT_TRUE(qmp.ok()) << qmp.status();

  Result<json> bare = (*qmp)->Execute("getfd", {{"fdname", "bare"}}, Soon());
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.status().message().find("No file descriptor supplied via SCM_RIGHTS"), std::string::npos)
      << bare.status();
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  UniqueFd reader(pipe_ends[0]), writer(pipe_ends[1]);
  Status passed = (*qmp)->PassFd("carried", reader.get(), Soon());
  ASSERT_TRUE(passed.ok()) << passed;

  ASSERT_TRUE(server_->Stop().ok());
  EXPECT_EQ(responder_calls, 1) << "the bare getfd must not reach the responder";
  EXPECT_EQ(server_->descriptors_received(), 1);
  std::vector<ReceivedCommand> commands = server_->commands();
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_EQ(commands[1].descriptors, 0);
  EXPECT_EQ(commands[2].descriptors, 1);
  struct stat info {};
  ASSERT_EQ(::fstat(reader.get(), &info), 0);
  EXPECT_EQ(commands[2].descriptor_inode, static_cast<uint64_t>(info.st_ino));
}

// QmpClient always negotiates first, so this speaks raw QMP: a command before
// `qmp_capabilities` gets QEMU's refusal, and every reply carries its request's id.
TEST_F(FakeQmpServerTest, RefusesCommandsBeforeNegotiationAndEchoesIds) {
  Start([](const std::string&, const json&) { return QmpReturn(); });
  Result<UniqueFd> socket = ConnectUnixSocket(SocketPath(), Soon());
  ASSERT_TRUE(socket.ok()) << socket.status();
  std::string received;
  auto next_message = [&]() -> json {
    while (received.find('\n') == std::string::npos) {
      std::array<std::byte, 1024> buffer;
      Result<size_t> count = ReadSome(socket->get(), buffer, Soon());
      if (!count.ok()) return json();
      received.append(reinterpret_cast<const char*>(buffer.data()), *count);
    }
    size_t newline = received.find('\n');
    json message = json::parse(received.substr(0, newline), nullptr, false);
    received.erase(0, newline + 1);
    return message;
  };
  EXPECT_TRUE(next_message().contains("QMP"));

  ASSERT_TRUE(WriteAll(socket->get(), R"({"execute": "query-status", "id": "early"})" "\n", Soon()).ok());
  json early = next_message();
  EXPECT_EQ(early.value("id", ""), "early");
  EXPECT_EQ(early["error"]["class"], "CommandNotFound");
  EXPECT_EQ(early["error"]["desc"], "Expecting capabilities negotiation with 'qmp_capabilities'");

  ASSERT_TRUE(WriteAll(socket->get(), R"({"execute": "qmp_capabilities", "id": 7})" "\n", Soon()).ok());
  EXPECT_EQ(next_message(), json({{"return", json::object()}, {"id", 7}}));
  ASSERT_TRUE(WriteAll(socket->get(), R"({"execute": "query-status", "id": [1, "x"]})" "\n", Soon()).ok());
  EXPECT_EQ(next_message(), json({{"return", json::object()}, {"id", json::array({1, "x"})}}));

  ASSERT_TRUE(server_->Stop().ok());
}

// The negative control for Stop()'s verdict: a line that is not a QMP command is a violation.
TEST_F(FakeQmpServerTest, StopReportsALineThatIsNotACommand) {
  Start([](const std::string&, const json&) { return QmpReturn(); });
  Result<UniqueFd> socket = ConnectUnixSocket(SocketPath(), Soon());
  ASSERT_TRUE(socket.ok()) << socket.status();
  ASSERT_TRUE(WriteAll(socket->get(), "[\"not\", \"a command\"]\n", Soon()).ok());
  // The refusal is written after the violation is noted: once it arrives, Stop() must see it.
  std::string seen;
  while (seen.find("QMP input must be") == std::string::npos) {
    std::array<std::byte, 1024> buffer;
    Result<size_t> count = ReadSome(socket->get(), buffer, Soon());
    ASSERT_TRUE(count.ok()) << count.status() << " after: " << seen;
    seen.append(reinterpret_cast<const char*>(buffer.data()), *count);
  }
  Status stopped = server_->Stop();
  EXPECT_EQ(stopped.code(), Status::Code::kFailedPrecondition) << stopped;
  EXPECT_NE(stopped.message().find("not a QMP command"), std::string::npos) << stopped;
}

}  // namespace
}  // namespace understudy::qemu::testing
