// Re-protection and failback. A kill-primary drill promotes the standby; the old primary's
// host comes back as a new secondary, and the promoted agent must protect the running VM
// again (checkpoints flow and are acknowledged). Then either a second kill-primary drill —
// now of the re-protected VM's host — or `ftctl failback`, a planned switchover that moves the
// VM home, must hold continuity too. One observer follows the console across all three
// agents for the whole story.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/child_process.h"
#include "control/control_server.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/background_observer.h"
#include "tests/harness/ftctl_drill.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

std::string RoleAndState(const std::string& dir) {
  Result<json> status = control::AgentStatus(dir, Deadline::AfterMillis(1000));
  return status.ok() ? status->value("role", "?") + "/" + status->value("state", "?") : "unreachable";
}

class ReprotectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
    AgentPairOptions options;
    options.separate_hosts = true;
    options.reprotect = true;
    options.guest = {.pages = 64};
    auto started = AgentPair::Start(options, "reprotect");
    ASSERT_TRUE(started.ok()) << started.status();
    pair_ = std::move(*started);
    observer_ = std::make_unique<BackgroundObserver>(
        std::vector<std::string>{pair_->primary_dir(), pair_->secondary_dir(), pair_->replacement_dir()});
  }
  void TearDown() override {
    if (observer_) observer_->Stop();
  }
  uint64_t last_number() { return observer_->last_number(); }

  // Kill the primary, bring its host back as a secondary, and wait for protection again.
  void FailOverAndReprotect() {
    Result<json> first = RunFtctlDrill("kill-primary", *pair_);
    ASSERT_TRUE(first.ok()) << first.status();
    std::printf("first drill: %s\n", first->dump().c_str());
    EXPECT_TRUE((*first)["continuity_held"].get<bool>()) << (*first)["verdict"];

    ASSERT_TRUE(pair_->StartReplacementSecondary().ok());
    auto asked = std::chrono::steady_clock::now();
    Result<json> reprotected = pair_->WaitForReprotection(Deadline::AfterMillis(60000));
    ASSERT_TRUE(reprotected.ok()) << reprotected.status();
    double reprotect_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - asked).count();
    // Checkpoints flow and are acknowledged again.
    Result<json> before = control::AgentStatus(pair_->secondary_dir(), Deadline::AfterMillis(1000));
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    Result<json> after = control::AgentStatus(pair_->secondary_dir(), Deadline::AfterMillis(1000));
    ASSERT_TRUE(before.ok() && after.ok());
    uint64_t committed_before = (*before)["committed_epoch"].get<uint64_t>();
    uint64_t committed_after = (*after)["committed_epoch"].get<uint64_t>();
    std::printf("re-protected %.0f ms after the new secondary started; committed epoch %llu -> %llu in 2 s, "
                "pause p50 %.2f ms\n",
                reprotect_ms, static_cast<unsigned long long>(committed_before),
                static_cast<unsigned long long>(committed_after), (*after)["pause_ms_p50"].get<double>());
    EXPECT_GT(committed_after, committed_before + 5) << "checkpoints do not flow";
    EXPECT_EQ(RoleAndState(pair_->replacement_dir()), "secondary/standby-ready");
    bool went_through_reprotecting = false;
    for (const json& change : (*after)["transitions"]) {
      went_through_reprotecting |= change.value("from", "") == "re-protecting" && change.value("to", "") == "protected";
    }
    EXPECT_TRUE(went_through_reprotecting) << (*after)["transitions"].dump();
  }

  void ExpectContinuous(const char* story) {
    observer_->Stop();
    EXPECT_FALSE(observer_->violation()) << *observer_->violation();
    std::printf("observer: %llu lines, up to %llu, %s\n", static_cast<unsigned long long>(observer_->lines_observed()),
                static_cast<unsigned long long>(observer_->last_number()), story);
  }

  std::unique_ptr<AgentPair> pair_;
  std::unique_ptr<BackgroundObserver> observer_;
};

TEST_F(ReprotectTest, PromotedVmIsProtectedAgainAndSurvivesASecondKill) {
  ASSERT_NO_FATAL_FAILURE(FailOverAndReprotect());
  // Second failover: the re-protected VM's host dies; the new secondary takes over.
  Result<json> second = RunFtctlDrill("kill-primary", *pair_, pair_->secondary_dir(), pair_->replacement_dir());
  ASSERT_TRUE(second.ok()) << second.status();
  std::printf("second drill: %s\n", second->dump().c_str());
  EXPECT_TRUE((*second)["continuity_held"].get<bool>()) << (*second)["verdict"] << "\nnew secondary log:\n"
                                                         << pair_->ReplacementLog();
  EXPECT_EQ((*second)["outcome"], "secondary promoted");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ExpectContinuous("across two failovers and a re-protection");
}

TEST_F(ReprotectTest, FailbackMovesTheVmHome) {
  ASSERT_NO_FATAL_FAILURE(FailOverAndReprotect());
  uint64_t before = last_number();
  std::vector<std::string> argv = {RunfilePath("ftctl/ftctl"), "failback", "--agent", pair_->secondary_dir(),
                                   "--agent", pair_->replacement_dir()};
  const std::string log = pair_->directory() + "/failback.log";
  Result<ChildProcess> failback = ChildProcess::Spawn(argv, log);
  ASSERT_TRUE(failback.ok()) << failback.status();
  Result<int> exited = failback->WaitForExit(Deadline::AfterMillis(30000));
  std::ifstream file(log);
  std::string printed((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::printf("ftctl failback:\n%s", printed.c_str());
  ASSERT_TRUE(exited.ok() && *exited == 0) << printed << "\n" << pair_->SecondaryLog();
  // The VM runs on its original host again (the replacement agent there promoted); the host
  // it left stepped down.
  // The agents settle within moments; poll rather than catch one mid-transition.
  auto settles_to = [](const std::string& dir, const std::string& expected) {
    Deadline deadline = Deadline::AfterMillis(5000);
    std::string seen;
    while (!deadline.Expired() && (seen = RoleAndState(dir)) != expected) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return seen;
  };
  EXPECT_EQ(settles_to(pair_->replacement_dir(), "secondary/promoted"), "secondary/promoted") << pair_->ReplacementLog();
  EXPECT_EQ(settles_to(pair_->secondary_dir(), "primary/fenced"), "primary/fenced") << pair_->SecondaryLog();
  Deadline deadline = Deadline::AfterMillis(5000);
  while (!deadline.Expired() && last_number() < before + 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(last_number(), before + 3) << "output did not continue after the failback";
  ExpectContinuous("across a failover, a re-protection and a failback");
}

}  // namespace
}  // namespace understudy::testing
