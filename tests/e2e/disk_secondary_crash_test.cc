// A secondary crash in the middle of applying a committed epoch's disk writes: the secondary
// (a test switch stops it halfway through writing epoch N into its copy) is SIGKILLed there
// and restarted on the same copy. Its journal must be replayed whole at start — the copy is
// one committed epoch, never a mix — the unprotected primary must protect the VM with it
// again, shipping only the blocks that can differ, and a later failover to that copy must find
// disk and memory agreeing (the guest checks before every append).
#include <gtest/gtest.h>

#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/counter_transcript.h"
#include "tests/harness/prometheus_server.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

Status WaitFor(const std::function<bool()>& done, Deadline deadline) {
  while (!done()) {
    if (deadline.Expired()) return Status::DeadlineExceeded("condition not reached");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Ok();
}

TEST(DiskSecondaryCrashTest, KilledMidApplyTheCopyIsWholeAndAFailoverToItVerifies) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  AgentPairOptions options;
  options.disk = true;
  options.disk_bytes = 16 << 20;
  options.stall_disk_apply_at_epoch = 30;
  auto started = AgentPair::Start(options, "disk-crash");
  ASSERT_TRUE(started.ok()) << started.status();
  AgentPair& pair = **started;
  console::ConsoleFollower follower = pair.Follower();
  CounterTranscript transcript;
  std::atomic<bool> following{true};
  std::string verify_failure;
  std::thread reader([&] {
    while (following.load()) {
      Result<std::string> line = follower.ReadLine(Deadline::AfterMillis(100));
      if (!line.ok()) continue;
      if (line->find("VERIFY FAILED") != std::string::npos) verify_failure = *line;
      else transcript.Observe(*line);
    }
  });
  auto stop_reading = [&] {
    following.store(false);
    if (reader.joinable()) reader.join();
  };

  uint64_t stalled_at = 0;
  Status stalled = WaitFor(
      [&] {
        Result<json> status = pair.SecondaryStatus();
        stalled_at = status.ok() ? status->value("test_stalled_in_disk_apply", uint64_t{0}) : 0;
        return stalled_at > 0;
      },
      Deadline::AfterMillis(60000));
  ASSERT_TRUE(stalled.ok()) << "the secondary never reached the crash point\n" << pair.SecondaryLog();
  pair.KillSecondary();
  std::printf("secondary killed halfway through applying the disk writes of epoch %llu\n",
              static_cast<unsigned long long>(stalled_at));
  ASSERT_TRUE(pair.WaitForPrimaryState("unprotected", Deadline::AfterMillis(20000)).ok()) << pair.PrimaryLog();

  ASSERT_TRUE(pair.RestartSecondary().ok());
  Status reprotected = WaitFor(
      [&] {
        Result<json> status = pair.PrimaryStatus();
        return status.ok() && status->value("state", "") == "protected" && status->contains("disk") &&
               (*status)["disk"].value("initial_copy", "") != "pending";
      },
      Deadline::AfterMillis(60000));
  ASSERT_TRUE(reprotected.ok()) << "not protected again\nprimary log:\n" << pair.PrimaryLog() << "\nsecondary log:\n"
                                << pair.SecondaryLog();
  const std::string secondary_log = pair.SecondaryLog();
  EXPECT_NE(secondary_log.find("replaying the journal of epoch " + std::to_string(stalled_at)), std::string::npos)
      << "the interrupted epoch's journal was not replayed at restart\n" << secondary_log;
  Result<json> status = pair.PrimaryStatus();
  ASSERT_TRUE(status.ok());
  const json& disk = (*status)["disk"];
  uint64_t resync_bytes = disk["initial_copy_bytes"].get<uint64_t>();
  std::printf("re-protected with a %s of %llu bytes (disk %llu bytes)\n", disk["initial_copy"].get<std::string>().c_str(),
              static_cast<unsigned long long>(resync_bytes), static_cast<unsigned long long>(disk["size_bytes"].get<uint64_t>()));
  EXPECT_EQ(disk["initial_copy"], "resync") << "the restarted copy should have been recognised\n" << pair.PrimaryLog();

  // Operators see the disk's replication in the metrics too.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  Result<json> latest = pair.PrimaryStatus();
  ASSERT_TRUE(latest.ok());
  Result<std::string> scraped = ScrapeMetrics(latest->value("metrics_address", ""));
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  for (const char* series : {"understudy_disk_written_bytes_total{", "understudy_disk_unacked_bytes{",
                             "understudy_disk_sync_progress_ratio{"}) {
    EXPECT_NE(scraped->find(series), std::string::npos) << series << " missing from the primary's metrics";
  }
  EXPECT_NE(scraped->find("understudy_disk_sync_bytes{host=\"primary\",role=\"primary\",vm=\"disk\"} " +
                          std::to_string(resync_bytes)),
            std::string::npos)
      << *scraped;

  // A later failover lands on the copy that was crashed into.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  uint64_t before_kill = transcript.last_number();
  pair.KillPrimary();
  Status wrote_more = WaitFor([&] { return transcript.last_number() >= before_kill + 20 || !verify_failure.empty(); },
                              Deadline::AfterMillis(30000));
  stop_reading();
  EXPECT_EQ(verify_failure, "") << pair.SecondaryLog();
  EXPECT_TRUE(wrote_more.ok()) << "the promoted guest stopped writing at record " << transcript.last_number() << "\n"
                               << pair.SecondaryLog();
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
  std::printf("after the failover the guest wrote and verified records %llu..%llu\n",
              static_cast<unsigned long long>(before_kill + 1), static_cast<unsigned long long>(transcript.last_number()));
}

}  // namespace
}  // namespace understudy::testing
