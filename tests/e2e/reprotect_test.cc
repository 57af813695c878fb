// Re-protection: after a kill-primary drill promotes the standby, the old primary's host
// comes back as a new secondary; the promoted agent must protect the running VM again
// (checkpoints flow and are acknowledged, the console held until then), and a second
// kill-primary drill — now of the re-protected VM's host — must hold continuity too. One
// observer follows the console across all three agents for the whole story.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "control/control_server.h"
#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"
#include "tests/harness/ftctl_drill.h"
#include "tests/harness/require_kvm.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

Result<json> AgentStatus(const std::string& dir) {
  return control::CallControl(dir + "/control.sock", {{"command", "status"}}, Deadline::AfterMillis(1000));
}

TEST(ReprotectTest, PromotedVmIsProtectedAgainAndSurvivesASecondKill) {
  UNDERSTUDY_REQUIRE_KVM();
  if (auto why = NetworkLabUnavailableReason()) GTEST_SKIP() << "skipped: " << *why;
  if (auto why = EtcdUnavailableReason()) GTEST_SKIP() << "skipped: " << *why;
  AgentPairOptions options;
  options.separate_hosts = true;
  options.reprotect = true;
  options.guest = {.pages = 64, .every = 500};
  auto started = AgentPair::Start(options, "reprotect");
  ASSERT_TRUE(started.ok()) << started.status();
  AgentPair& pair = **started;

  std::atomic<bool> watching{true};
  CounterTranscript transcript;
  std::mutex transcript_mutex;
  std::thread observer([&] {
    console::ConsoleFollower follower(
        {pair.primary_dir() + "/console.sock", pair.secondary_dir() + "/console.sock", pair.replacement_dir() + "/console.sock"});
    while (watching.load()) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(50));
      if (!line.ok()) continue;
      std::lock_guard<std::mutex> lock(transcript_mutex);
      transcript.Observe(*line);
    }
  });
  auto finish = [&] {
    watching.store(false);
    if (observer.joinable()) observer.join();
  };
  // Joins the observer however the test ends (an ASSERT returns early).
  struct Joiner {
    std::function<void()> finish;
    ~Joiner() { finish(); }
  } joiner{finish};

  Result<json> first = RunFtctlDrill("kill-primary", pair);
  ASSERT_TRUE(first.ok()) << first.status();
  std::printf("first drill: %s\n", first->dump().c_str());
  EXPECT_TRUE((*first)["continuity_held"].get<bool>()) << (*first)["verdict"];

  // The old primary's host returns as a secondary; the promoted agent protects the VM again.
  ASSERT_TRUE(pair.StartReplacementSecondary().ok());
  Deadline deadline = Deadline::AfterMillis(60000);
  std::string state;
  while (!deadline.Expired()) {
    Result<json> status = AgentStatus(pair.secondary_dir());
    state = status.ok() ? status->value("role", "?") + "/" + status->value("state", "?") : "unreachable";
    if (state == "primary/protected") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(state, "primary/protected") << "promoted agent log:\n" << pair.SecondaryLog() << "\nnew secondary log:\n"
                                        << pair.ReplacementLog();
  // Checkpoints flow and are acknowledged again.
  Result<json> before = AgentStatus(pair.secondary_dir());
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  Result<json> after = AgentStatus(pair.secondary_dir());
  ASSERT_TRUE(before.ok() && after.ok());
  uint64_t committed_before = (*before)["committed_epoch"].get<uint64_t>();
  uint64_t committed_after = (*after)["committed_epoch"].get<uint64_t>();
  std::printf("re-protected: committed epoch %llu -> %llu in 2 s, pause p50 %.2f ms\n",
              static_cast<unsigned long long>(committed_before), static_cast<unsigned long long>(committed_after),
              (*after)["pause_ms_p50"].get<double>());
  EXPECT_GT(committed_after, committed_before + 5) << "checkpoints do not flow";
  Result<json> replacement = AgentStatus(pair.replacement_dir());
  ASSERT_TRUE(replacement.ok());
  EXPECT_EQ((*replacement)["state"], "standby-ready");

  // Second failover: the re-protected VM's host dies; the new secondary takes over.
  Result<json> second = RunFtctlDrill("kill-primary", pair, pair.secondary_dir(), pair.replacement_dir());
  ASSERT_TRUE(second.ok()) << second.status();
  std::printf("second drill: %s\n", second->dump().c_str());
  EXPECT_TRUE((*second)["continuity_held"].get<bool>()) << (*second)["verdict"] << "\nnew secondary log:\n"
                                                         << pair.ReplacementLog();
  EXPECT_EQ((*second)["outcome"], "secondary promoted");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  finish();
  std::lock_guard<std::mutex> lock(transcript_mutex);
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
  std::printf("observer: %llu lines, up to %llu, across two failovers and a re-protection\n",
              static_cast<unsigned long long>(transcript.lines_observed()),
              static_cast<unsigned long long>(transcript.last_number()));
}

}  // namespace
}  // namespace understudy::testing
