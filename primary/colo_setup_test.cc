// StartColoMigration against a scripted QMP server (no QEMU): the retry of `migrate` while
// QEMU 7.2 still holds the previous migration's yank instance. A real QEMU refuses that way
// only for the few milliseconds between a COLO migration's end and its cleanup, too briefly to
// provoke on demand; the fake refuses as often as each case needs, with QEMU's own words
// (util/yank.c's error, which qmp_migrate passes through unchanged).
#include "primary/colo_setup.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/test_scratch_dir.h"
#include "common/unique_fd.h"
#include "qemu/testing/fake_qmp_server.h"

namespace understudy::primary {
namespace {

using nlohmann::json;
using qemu::testing::FakeQmpServer;
using qemu::testing::QmpError;
using qemu::testing::QmpReturn;
using qemu::testing::ReceivedCommand;
using std::chrono::milliseconds;

constexpr char kYankRefusal[] = "duplicate yank instance";  // QEMU 7.2 util/yank.c, verbatim
// How long the fake serves and the client waits for anything: far beyond what a case needs.
constexpr milliseconds kServeBudget(10000);

// Reads the migrate attempts a Responder refuses, and answers everything else with success.
// `refusals[i]` is the error for attempt i (empty: accept it); attempts past the end repeat the last.
FakeQmpServer::Responder RefuseMigrate(std::vector<std::string> refusals) {
  auto attempt = std::make_shared<size_t>(0);  // only the server thread touches it
  return [refusals = std::move(refusals), attempt](const std::string& command, const json&) {
    if (command != "migrate") return QmpReturn();
    const std::string& refusal = refusals[std::min(*attempt, refusals.size() - 1)];
    ++*attempt;
    return refusal.empty() ? QmpReturn() : QmpError(refusal);
  };
}

std::vector<ReceivedCommand> Named(const std::vector<ReceivedCommand>& commands, const std::string& name) {
  std::vector<ReceivedCommand> named;
  for (const ReceivedCommand& command : commands) {
    if (command.name == name) named.push_back(command);
  }
  return named;
}

uint64_t InodeOf(int fd) {
  struct stat info {};
  EXPECT_EQ(::fstat(fd, &info), 0);
  return static_cast<uint64_t>(info.st_ino);
}

class StartColoMigrationTest : public ::testing::Test {
 protected:
  // Starts the fake with `responder`, connects a QmpClient and makes the migration socketpair.
  void Serve(FakeQmpServer::Responder responder) {
    Result<TestScratchDir> scratch = TestScratchDir::Create("colo-setup");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_ = std::make_unique<TestScratchDir>(std::move(*scratch));
    Result<std::unique_ptr<FakeQmpServer>> server =
        FakeQmpServer::Start(scratch_->File("qmp.sock"), std::move(responder), Deadline::After(kServeBudget));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    Result<std::unique_ptr<qemu::QmpClient>> client =
        qemu::QmpClient::Connect(scratch_->File("qmp.sock"), Deadline::After(kServeBudget));
    ASSERT_TRUE(client.ok()) << client.status();
    qmp_ = std::move(*client);
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    ours_ = UniqueFd(pair[0]);
    theirs_ = UniqueFd(pair[1]);
  }

  // Stops the fake (it must have seen no protocol violation) and returns what it received.
  std::vector<ReceivedCommand> Received() {
    Status stopped = server_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
    return server_->commands();
  }

  // Every getfd carried the socket StartColoMigration was given (one descriptor each, that
  // very socket, under the name the migrate commands use), and every migrate asked for it.
  void ExpectEachAttemptPassedTheSocket(const std::vector<ReceivedCommand>& commands) {
    for (const ReceivedCommand& getfd : Named(commands, "getfd")) {
      EXPECT_EQ(getfd.arguments, json({{"fdname", "understudy-colo"}}));
      EXPECT_EQ(getfd.descriptors, 1);
      EXPECT_EQ(getfd.descriptor_inode, InodeOf(theirs_.get()));
    }
    for (const ReceivedCommand& migrate : Named(commands, "migrate")) {
      EXPECT_EQ(migrate.arguments, json({{"uri", "fd:understudy-colo"}}));
    }
  }

  std::unique_ptr<TestScratchDir> scratch_;
  std::unique_ptr<FakeQmpServer> server_;
  std::unique_ptr<qemu::QmpClient> qmp_;
  UniqueFd ours_;
  UniqueFd theirs_;
};

TEST_F(StartColoMigrationTest, RetriesMigrateWhileThePreviousMigrationsYankInstanceIsRegistered) {
  Serve(RefuseMigrate({kYankRefusal, kYankRefusal, ""}));

  Status started = StartColoMigration(*qmp_, theirs_.get(), milliseconds(37), Deadline::After(kServeBudget));
  ASSERT_TRUE(started.ok()) << started;

  std::vector<ReceivedCommand> commands = Received();
  std::vector<std::string> names;
  for (const ReceivedCommand& command : commands) names.push_back(command.name);
  // The COLO settings once, then the descriptor again before each of the three attempts: QEMU
  // refused before touching it, and a new getfd under the same name replaces the old one.
  EXPECT_EQ(names, (std::vector<std::string>{"qmp_capabilities", "migrate-set-capabilities", "migrate-set-parameters",
                                             "getfd", "migrate", "getfd", "migrate", "getfd", "migrate"}));
  ASSERT_GE(commands.size(), 3u);
  EXPECT_EQ(commands[1].arguments, json::parse(R"({"capabilities": [{"capability": "x-colo", "state": true},
                                                                    {"capability": "return-path", "state": false}]})"));
  EXPECT_EQ(commands[2].arguments, json({{"x-checkpoint-delay", 37}}));
  ExpectEachAttemptPassedTheSocket(commands);
  EXPECT_EQ(server_->descriptors_received(), 3);
}

// The negative control: the retry is for the yank refusal only. Any other refusal (here 7.2's
// QERR_MIGRATION_ACTIVE) is final at once, so the oracle above can tell a retry from none.
TEST_F(StartColoMigrationTest, ReturnsAnyOtherMigrateRefusalAtOnce) {
  Serve(RefuseMigrate({"There's a migration process in progress", ""}));

  Status started = StartColoMigration(*qmp_, theirs_.get(), milliseconds(50), Deadline::After(kServeBudget));
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.code(), Status::Code::kFailedPrecondition) << started;
  EXPECT_EQ(started.message().rfind("starting the COLO migration: ", 0), 0u) << started;
  EXPECT_NE(started.message().find("There's a migration process in progress"), std::string::npos) << started;

  std::vector<ReceivedCommand> commands = Received();
  EXPECT_EQ(Named(commands, "migrate").size(), 1u);
  EXPECT_EQ(Named(commands, "getfd").size(), 1u);
  ExpectEachAttemptPassedTheSocket(commands);
}

// A QEMU that never lets go of the yank instance costs the deadline, not more, and in the end
// the caller reads QEMU's refusal, not a timeout: no attempt is begun that the deadline could
// cut short (colo_setup.cc: a 10 ms pause plus 50 ms for an attempt).
TEST_F(StartColoMigrationTest, StopsRetryingAtTheDeadlineWithQemusRefusal) {
  Serve(RefuseMigrate({kYankRefusal}));
  constexpr milliseconds kBudget(300);
  constexpr milliseconds kLastAttemptAllowance(60);
  // Generous for a loaded 2-core machine under TSan: the code adds no wait past the deadline.
  constexpr milliseconds kSlack(300);

  auto start = std::chrono::steady_clock::now();
  Status started = StartColoMigration(*qmp_, theirs_.get(), milliseconds(50), Deadline::After(kBudget));
  auto elapsed = std::chrono::steady_clock::now() - start;

  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.code(), Status::Code::kFailedPrecondition) << started;
  EXPECT_EQ(started.message().rfind("starting the COLO migration: ", 0), 0u) << started;
  EXPECT_NE(started.message().find(kYankRefusal), std::string::npos) << started;
  EXPECT_GE(elapsed, kBudget - kLastAttemptAllowance) << "gave up early: " << started;
  EXPECT_LE(elapsed, kBudget + kSlack) << started;

  std::vector<ReceivedCommand> commands = Received();
  size_t migrates = Named(commands, "migrate").size();
  size_t getfds = Named(commands, "getfd").size();
  EXPECT_GE(migrates, 2u) << "never retried";
  // At most one attempt per retry pause (10 ms) and one more.
  EXPECT_LE(migrates, static_cast<size_t>((kBudget + kSlack) / milliseconds(10)) + 1);
  EXPECT_EQ(getfds, migrates) << "every attempt ends with QEMU's answer to its migrate";
  ExpectEachAttemptPassedTheSocket(commands);
}

}  // namespace
}  // namespace understudy::primary
