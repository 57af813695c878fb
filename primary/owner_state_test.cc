#include "primary/owner_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace understudy::primary {
namespace {

using failover::ControllerState;
using nlohmann::json;

std::vector<std::string> Moves(const json& status) {
  std::vector<std::string> moves;
  for (const json& entry : status["transitions"]) moves.push_back(entry["from"].get<std::string>() + ">" + entry["to"].get<std::string>());
  return moves;
}

TEST(OwnerStateTest, RecordsEachChangeOnceAndShowsItInTheStatus) {
  OwnerState state("primary", "state ", "starting", /*starts_alone=*/false);
  state.Follow(ControllerState::kSyncing, false, nullptr);
  state.Follow(ControllerState::kSyncing, false, nullptr);  // no change: nothing recorded
  state.Follow(ControllerState::kProtected, true, nullptr);
  state.Set("stopped", nullptr);
  failover::ControllerSnapshot snapshot;
  snapshot.state = ControllerState::kStopped;
  snapshot.released = 42;
  snapshot.peer = "host2";
  json status = json::object();
  state.AddStatus(snapshot, status);
  EXPECT_EQ(Moves(status), (std::vector<std::string>{"starting>syncing", "syncing>protected", "protected>stopped"}));
  EXPECT_EQ(status["state"], "stopped");
  EXPECT_EQ(status["role"], "primary");
  EXPECT_EQ(status["controller_state"], "stopped");
  EXPECT_EQ(status["released_epoch"], 42);
  EXPECT_EQ(status["peer_name"], "host2");
  EXPECT_EQ(status["pid"], ::getpid());
  EXPECT_TRUE(status.contains("process_space"));
}

// A promoted standby's owner starts alone: its first pairing reads "re-protecting"; the
// control, an owner that did not, reads "syncing" for the same controller state.
TEST(OwnerStateTest, AnOwnerThatStartsAloneReprotects) {
  OwnerState promoted("secondary", "owner state ", "promoted", /*starts_alone=*/true);
  OwnerState first("primary", "state ", "starting", /*starts_alone=*/false);
  promoted.Follow(ControllerState::kSyncing, false, nullptr);
  first.Follow(ControllerState::kSyncing, false, nullptr);
  EXPECT_EQ(promoted.name(), "re-protecting");
  EXPECT_EQ(first.name(), "syncing");
}

}  // namespace
}  // namespace understudy::primary
