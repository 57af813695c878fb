// Dirty tracking is complete: at a checkpoint, the secondary's committed image of the guest's
// RAM equals the primary's guest RAM, page for page (tests/harness/ram_oracle.h), for the
// counter guest at three dirty rates, at three checkpoints each, under whichever accelerator
// the harness chose, and for the Linux guest running Redis under the TCG vehicle while
// redis-cli clients keep it busy (its NIC's DMA and the kernel's own writes included). The
// negative control leaves one dirty page out of one checkpoint (a test-only switch of the
// primary) and the oracle must name exactly that page.
//
// Finding (TCG vehicle 7.2+dfsg-1987748227dd, 2026-12-06): at 64 pages per pass the 64 hot
// counter pages and the stack page differ at every checkpoint, the secondary's copies frozen
// at one early sequence number while the primary's advance; 1024 and 8192 pages pass, and all
// rates pass under KVM. Likely cause: QEMU 7.2's word-aligned fast path of
// cpu_physical_memory_sync_dirty_bitmap() (include/exec/ram_addr.h) clears the migration
// dirty bits without tlb_reset_dirty_range_all() under TCG (its slow path does), so a page
// whose TLB entry already lost TLB_NOTDIRTY is written without being marked dirty again until
// that entry is evicted — a working set that fits the TLB is never re-sent. A fix belongs in
// the vehicle (qemu/tcg), not here. It is there now: qemu/tcg/tcg-dirty-sync-fix.patch, with
// which every case passes under both accelerators.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <regex>
#include <thread>

#include "tests/harness/agent_pair.h"
#include "tests/harness/guest_accelerator.h"
#include "tests/harness/linux_guest_pair.h"
#include "tests/harness/ram_oracle.h"
#include "tests/harness/redis_clients.h"

namespace understudy::testing {
namespace {

struct RunningPair {
  ScratchDir monitor_dir;  // short path: a UNIX socket name is limited to 108 bytes
  std::unique_ptr<AgentPair> pair;
  std::unique_ptr<qemu::QmpClient> monitor;
  std::string scratch;
  uint64_t ram_bytes = 0;
};

// `start` starts the pair from the options it is given (a monitor socket added to them).
Result<RunningPair> StartPairWith(AgentPairOptions options, uint64_t ram_bytes,
                                  const std::function<Result<std::unique_ptr<AgentPair>>(const AgentPairOptions&)>& start) {
  UNDERSTUDY_ASSIGN_OR_RETURN(ScratchDir monitor_dir, ScratchDir::Create("ut-ramq"));
  const std::string socket = monitor_dir.path() + "/qmp.sock";
  // A monitor of the test's own on the primary's QEMU only (host-local arguments).
  options.primary_qemu_args = {"-qmp", "unix:" + socket + ",server=on,wait=off"};
  // Each check holds the VM and writes and reads its RAM three times (pmemsave, the secondary's
  // dump, the comparison: 2 x 256 MiB for the Linux guest). On this shared 2-core machine that
  // stalled the agents past the default 150 ms heartbeat budget (2026-12-06, load ~12: a false
  // peer death, the secondary promoted itself mid-check, "the primary never stopped at epoch
  // N"). Failure detection is not this test's subject; dirty tracking is.
  options.heartbeat_budget_ms = 2000;
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<AgentPair> pair, start(options));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<qemu::QmpClient> monitor,
                              qemu::QmpClient::Connect(socket, Deadline::AfterMillis(10000)));
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string scratch = tmp && *tmp ? tmp : monitor_dir.path();
  return RunningPair{std::move(monitor_dir), std::move(pair), std::move(monitor), scratch, ram_bytes};
}

Result<RunningPair> StartPair(const AgentPairOptions& options, const std::string& name) {
  return StartPairWith(options, uint64_t{options.guest.memory_mib} << 20,
                       [&](const AgentPairOptions& with_monitor) { return AgentPair::Start(with_monitor, name); });
}

std::string AcceleratorName() {
  Result<GuestAccelerator> accelerator = ChosenAccelerator();
  return accelerator.ok() ? accelerator->name : "?";
}

Result<uint64_t> CapturedEpoch(const AgentPair& pair) {
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json status, pair.PrimaryStatus());
  return status.value("epoch", uint64_t{0});
}

void CheckRate(uint32_t pages) {
  AgentPairOptions options;
  options.guest = {.pages = pages};
  Result<RunningPair> running = StartPair(options, "ramq" + std::to_string(pages));
  ASSERT_TRUE(running.ok()) << running.status();
  const std::string accelerator = AcceleratorName();
  for (int check = 0; check < 3; ++check) {
    Result<uint64_t> captured = CapturedEpoch(*running->pair);
    ASSERT_TRUE(captured.ok()) << captured.status();
    uint64_t epoch = *captured + 10;  // a checkpoint still ahead, a few apart per check
    Result<RamComparison> result =
        CheckRamAtCheckpoint(*running->pair, *running->monitor, epoch, running->scratch, running->ram_bytes);
    ASSERT_TRUE(result.ok()) << result.status() << "\nprimary log:\n"
                             << running->pair->PrimaryLog() << "\nsecondary log:\n"
                             << running->pair->SecondaryLog();
    std::printf("ram-equality accel=%s pages_per_pass=%u %s; VM held %.1f ms, compare %.1f ms\n", accelerator.c_str(),
                pages, result->Describe().c_str(), result->hold_ms, result->compare_ms);
    std::fflush(stdout);
    EXPECT_TRUE(result->equal()) << result->Describe();
    // The counter's dirtied pages hold its sequence number: they were compared, not zeros.
    EXPECT_GE(result->nonzero_pages, pages) << result->Describe();
    EXPECT_EQ(result->pages_compared + result->pages_skipped, running->ram_bytes / 4096);
  }
  Result<nlohmann::json> status = running->pair->PrimaryStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["state"], "protected") << "holding checkpoints must not unprotect the VM\nprimary log:\n"
                                             << running->pair->PrimaryLog() << "\nsecondary log:\n"
                                             << running->pair->SecondaryLog();
}

TEST(RamEqualityTest, SixtyFourPagesPerPass) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  CheckRate(64);
}

TEST(RamEqualityTest, ThousandTwentyFourPagesPerPass) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  CheckRate(1024);
}

TEST(RamEqualityTest, EightThousandOneHundredNinetyTwoPagesPerPass) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  CheckRate(8192);
}

// The first COLO checkpoint after the precopy (epoch 2; an earlier prototype saw it carry no
// dirty pages under TCG), held from the primary's start.
TEST(RamEqualityTest, TheFirstCheckpointAfterThePrecopy) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  constexpr uint64_t kFirstCheckpoint = 2;
  AgentPairOptions options;
  options.guest = {.pages = 1024};
  options.hold_checkpoint_at_epoch = kFirstCheckpoint;
  Result<RunningPair> running = StartPair(options, "ramqfirst");
  ASSERT_TRUE(running.ok()) << running.status();
  Result<RamComparison> result = CheckRamAtCheckpoint(*running->pair, *running->monitor, kFirstCheckpoint,
                                                      running->scratch, running->ram_bytes, /*already_armed=*/true);
  ASSERT_TRUE(result.ok()) << result.status() << "\nprimary log:\n" << running->pair->PrimaryLog();
  std::printf("ram-equality accel=%s pages_per_pass=1024 (first checkpoint) %s; VM held %.1f ms\n",
              AcceleratorName().c_str(), result->Describe().c_str(), result->hold_ms);
  std::fflush(stdout);
  EXPECT_TRUE(result->equal()) << result->Describe();
  EXPECT_GE(result->nonzero_pages, 1024u) << result->Describe();
}

// The Linux guest running Redis under the TCG vehicle, three redis-cli clients INCRing through
// its virtio-net NIC (output commit on, so every request also drives output-triggered
// checkpoints): the kernel, Redis and the NIC's DMA all write guest RAM.
TEST(RamEqualityTest, LinuxGuestWithRedisClients) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/true);  // namespaces for the client network
  Result<GuestAccelerator> linux_accelerator = LinuxGuestAccelerator();
  if (!linux_accelerator.ok()) {
    const char* forced = std::getenv("UNDERSTUDY_ACCEL");
    ASSERT_FALSE(forced && std::string(forced) == "tcg") << linux_accelerator.status();
    GTEST_SKIP() << "skipped: " << linux_accelerator.status();
  }
  std::optional<LinuxGuestPair> linux;
  AgentPairOptions options;
  const uint64_t ram_bytes = uint64_t{LinuxGuestOptions{}.memory_mib} << 20;
  Result<RunningPair> running =
      StartPairWith(options, ram_bytes, [&](const AgentPairOptions& with_monitor) -> Result<std::unique_ptr<AgentPair>> {
        UNDERSTUDY_ASSIGN_OR_RETURN(LinuxGuestPair started, StartLinuxGuestPair(with_monitor, "ramqlinux"));
        std::unique_ptr<AgentPair> pair = std::move(started.pair);
        linux.emplace(std::move(started));
        return pair;
      });
  ASSERT_TRUE(running.ok()) << running.status();
  RedisClientsOptions clients_options;
  clients_options.launcher = NetnsExec(running->pair->network()->namespace_name());
  clients_options.host = ClientNetwork::kGuestAddress;
  clients_options.scratch_dir = running->pair->directory();
  std::unique_ptr<RedisIncrClients> clients = RedisIncrClients::Start(clients_options);
  const Deadline busy = Deadline::AfterMillis(30000);
  while (clients->replies() < 20 && !busy.Expired()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(clients->replies(), 20u) << "the clients are not getting replies";
  for (int check = 0; check < 3; ++check) {
    Result<uint64_t> captured = CapturedEpoch(*running->pair);
    ASSERT_TRUE(captured.ok()) << captured.status();
    const uint64_t replies_before = clients->replies();
    Result<RamComparison> result = CheckRamAtCheckpoint(*running->pair, *running->monitor, *captured + 10,
                                                        running->scratch, running->ram_bytes);
    ASSERT_TRUE(result.ok()) << result.status() << "\nprimary log:\n"
                             << running->pair->PrimaryLog() << "\nsecondary log:\n"
                             << running->pair->SecondaryLog();
    std::printf("ram-equality accel=%s Linux guest + Redis (%llu INCR replies before this check) %s; VM held %.1f ms, "
                "compare %.1f ms\n",
                linux->accelerator.name.c_str(), static_cast<unsigned long long>(replies_before),
                result->Describe().c_str(), result->hold_ms, result->compare_ms);
    std::fflush(stdout);
    EXPECT_TRUE(result->equal()) << result->Describe();
    EXPECT_EQ(result->pages_compared + result->pages_skipped, running->ram_bytes / 4096);
    // A booted Linux with Redis fills far more than a few pages.
    EXPECT_GT(result->nonzero_pages, 1000u) << result->Describe();
  }
  clients->Stop();
  clients->Finish();
  IncrVerdict verdict = CheckIncrHistory(clients->Logs(), {});
  EXPECT_TRUE(verdict.consistent) << verdict.Summary();
  EXPECT_EQ(verdict.unanswered, 0u) << verdict.Summary();
  Result<nlohmann::json> status = running->pair->PrimaryStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["state"], "protected") << running->pair->PrimaryLog();
}

// Negative control: the primary leaves pc.ram's highest dirty page out of epoch kDrop; the
// oracle must find exactly that page different, at the address the primary's log names.
TEST(RamEqualityTest, NegativeControlADroppedDirtyPageIsCaughtAndNamed) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  constexpr uint64_t kDrop = 120;
  AgentPairOptions options;
  // 1024 pages per pass: the rate at which the positive check holds under both accelerators
  // (see the 64-page case under TCG), so the dropped page is the only difference.
  options.guest = {.pages = 1024};
  options.drop_page_at_epoch = kDrop;
  Result<RunningPair> running = StartPair(options, "ramqneg");
  ASSERT_TRUE(running.ok()) << running.status();
  Result<uint64_t> captured = CapturedEpoch(*running->pair);
  ASSERT_TRUE(captured.ok()) << captured.status();
  ASSERT_LT(*captured + 2, kDrop) << "the pair took too long to start: epoch " << *captured << " already";
  Result<RamComparison> result =
      CheckRamAtCheckpoint(*running->pair, *running->monitor, kDrop, running->scratch, running->ram_bytes);
  ASSERT_TRUE(result.ok()) << result.status() << "\nprimary log:\n" << running->pair->PrimaryLog();
  std::printf("ram-equality negative control accel=%s %s\n", AcceleratorName().c_str(), result->Describe().c_str());
  std::fflush(stdout);
  std::smatch match;
  const std::string log = running->pair->PrimaryLog();
  ASSERT_TRUE(std::regex_search(log, match, std::regex("leaving the page of pc.ram at offset (0x[0-9a-f]+) out of epoch " +
                                                       std::to_string(kDrop))))
      << "the primary never dropped a page:\n" << log;
  const uint64_t dropped = std::stoull(match[1].str(), nullptr, 16);
  EXPECT_FALSE(result->equal()) << "the oracle missed a page left out of a checkpoint";
  EXPECT_EQ(result->pages_differing, 1u) << result->Describe();
  ASSERT_FALSE(result->first_differing.empty());
  EXPECT_EQ(result->first_differing[0], dropped) << result->Describe();
}

}  // namespace
}  // namespace understudy::testing
