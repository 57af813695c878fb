// Resynchronisation after a failover: the primary is killed, the promoted VM keeps writing to
// its disk unprotected, and the old primary's host comes back as a secondary with its old
// image. Re-protection must ship only the blocks that can differ (what the promoted VM wrote,
// plus what the dead primary may have written after the last committed epoch), not the disk
// again — the disk is filled, so a full copy would be all of it — and a second failover, to
// the resynchronised copy, must still find disk and memory agreeing.
#include <gtest/gtest.h>

#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/background_observer.h"
#include "tests/harness/ftctl_drill.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kDiskBytes = 32 << 20;

TEST(DiskResyncTest, ReprotectionShipsOnlyChangedBlocksAndTheNextFailoverVerifies) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);
  AgentPairOptions options;
  options.separate_hosts = true;
  options.reprotect = true;
  options.disk = true;
  options.disk_bytes = kDiskBytes;
  options.disk_filled = true;
  auto started = AgentPair::Start(options, "resync");
  ASSERT_TRUE(started.ok()) << started.status();
  AgentPair& pair = **started;
  BackgroundObserver observer({pair.primary_dir(), pair.secondary_dir(), pair.replacement_dir()});
  Result<json> first_status = pair.PrimaryStatus();
  ASSERT_TRUE(first_status.ok());
  EXPECT_EQ((*first_status)["disk"]["initial_copy"], "full");
  uint64_t full_copy_bytes = (*first_status)["disk"]["initial_copy_bytes"].get<uint64_t>();
  // 8 MiB per checkpoint: the 32 MiB copy is spread over four epochs, and the pair is
  // protected only once the last of them committed.
  const std::string primary_log = pair.PrimaryLog();
  size_t complete_at = primary_log.find("the initial disk copy is complete with epoch ");
  ASSERT_NE(complete_at, std::string::npos) << primary_log;
  uint64_t complete_epoch = std::stoull(primary_log.substr(complete_at + 45));
  EXPECT_GE(complete_epoch, 4u) << "the initial copy was not spread over checkpoints";
  EXPECT_TRUE((*first_status)["disk"]["initial_copy_committed"].get<bool>());
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));

  Result<json> first = RunFtctlDrill("kill-primary", pair);
  ASSERT_TRUE(first.ok()) << first.status() << "\nprimary log:\n" << pair.PrimaryLog() << "\nsecondary log:\n"
                          << pair.SecondaryLog();
  EXPECT_TRUE((*first)["continuity_held"].get<bool>()) << (*first)["verdict"];
  // Unprotected writes on the promoted side.
  uint64_t at_promotion = observer.last_number();
  Deadline writing = Deadline::AfterMillis(20000);
  while (observer.last_number() < at_promotion + 10 && !writing.Expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(observer.last_number(), at_promotion + 10) << pair.SecondaryLog();

  ASSERT_TRUE(pair.StartReplacementSecondary().ok());
  Result<json> status = pair.WaitForReprotection(Deadline::AfterMillis(60000));
  ASSERT_TRUE(status.ok()) << status.status();
  const json& disk = (*status)["disk"];
  uint64_t resync_bytes = disk["initial_copy_bytes"].get<uint64_t>();
  std::printf("initial copy complete with epoch %llu\n", static_cast<unsigned long long>(complete_epoch));
  std::printf("disk of %llu bytes: first pairing copied %llu bytes, re-protection resynchronised %llu bytes (%.1f%%), "
              "%llu records written unprotected\n",
              static_cast<unsigned long long>(kDiskBytes), static_cast<unsigned long long>(full_copy_bytes),
              static_cast<unsigned long long>(resync_bytes), 100.0 * resync_bytes / kDiskBytes,
              static_cast<unsigned long long>(observer.last_number() - at_promotion));
  EXPECT_EQ(disk["initial_copy"], "resync") << pair.SecondaryLog() << "\nnew secondary log:\n" << pair.ReplacementLog();
  EXPECT_EQ(full_copy_bytes, kDiskBytes) << "the filled disk's first copy carries all of it";
  EXPECT_GT(resync_bytes, 0u);
  EXPECT_LT(resync_bytes, kDiskBytes / 8) << "re-protection shipped far more than what changed";

  // The second failover lands on the resynchronised copy: the guest's own check before every
  // append must keep passing there.
  uint64_t before_second = observer.last_number();
  Result<json> second = RunFtctlDrill("kill-primary", pair, pair.secondary_dir(), pair.replacement_dir());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)["continuity_held"].get<bool>()) << (*second)["verdict"] << "\n" << pair.ReplacementLog();
  EXPECT_EQ((*second)["outcome"], "secondary promoted");
  Deadline more = Deadline::AfterMillis(20000);
  while (observer.last_number() < before_second + 20 && !observer.violation() && !more.Expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  observer.Stop();
  EXPECT_FALSE(observer.violation()) << *observer.violation() << "\n" << pair.ReplacementLog();
  EXPECT_GE(observer.last_number(), before_second + 20) << "the guest on the resynchronised disk stopped writing\n"
                                                        << pair.ReplacementLog();
  std::printf("after the second failover the guest wrote and verified records up to %llu\n",
              static_cast<unsigned long long>(observer.last_number()));
}

}  // namespace
}  // namespace understudy::testing
