// Boots the counter guest under the chosen accelerator (KVM with stock QEMU, or TCG with the
// TCG vehicle) and checks what an observer of its console sees, that the guest really runs
// under that accelerator, and that the harness's derived pace gives the console rate the
// tests' budgets assume.
#include <gtest/gtest.h>

#include <chrono>

#include "tests/harness/counter_transcript.h"
#include "tests/harness/require_guest_accelerator.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {
namespace {

TEST(GuestBootTest, CounterGuestPrintsAContinuousSequence) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  Result<GuestAccelerator> accelerator = ChosenAccelerator();
  ASSERT_TRUE(accelerator.ok()) << accelerator.status();
  Result<std::unique_ptr<TestGuest>> guest = TestGuest::StartCounter({.pages = 64}, "boot");
  ASSERT_TRUE(guest.ok()) << guest.status();

  CounterTranscript transcript;
  Deadline deadline = Deadline::AfterMillis(60000);
  while (transcript.lines_observed() < 5) {
    Result<std::string> line = (*guest)->console().ReadLine(deadline);
    ASSERT_TRUE(line.ok()) << line.status() << "; QEMU log: " << (*guest)->process().Log();
    transcript.Observe(*line);
  }
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
  EXPECT_EQ(transcript.last_number(), 5u);

  // The guest really runs under the chosen accelerator: KVM is not a silent TCG fallback, and
  // TCG is not KVM.
  Result<nlohmann::json> kvm = (*guest)->process().qmp().Execute("query-kvm", Deadline::AfterMillis(5000));
  ASSERT_TRUE(kvm.ok()) << kvm.status();
  EXPECT_EQ((*kvm)["enabled"].get<bool>(), accelerator->name == "kvm") << kvm->dump();
}

TEST(GuestBootTest, DerivedPaceGivesTheConsoleRateTheTestsAssume) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  Result<GuestAccelerator> accelerator = ChosenAccelerator();
  ASSERT_TRUE(accelerator.ok()) << accelerator.status();
  const CounterGuestOptions options{.pages = 64};
  Result<std::unique_ptr<TestGuest>> guest = TestGuest::StartCounter(options, "pace");
  ASSERT_TRUE(guest.ok()) << guest.status();
  // Count from the first line (after boot) for 4 s.
  CounterTranscript transcript;
  Result<std::string> first = (*guest)->console().ReadLine(Deadline::AfterMillis(60000));
  ASSERT_TRUE(first.ok()) << first.status();
  transcript.Observe(*first);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(4);
  while (std::chrono::steady_clock::now() < end) {
    Result<std::string> line = (*guest)->console().ReadLine(Deadline::AfterMillis(100));
    if (line.ok()) transcript.Observe(*line);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = static_cast<double>(transcript.lines_observed() - 1) / seconds;
  std::printf("%s, pages=64 every=%u: %.1f console lines/s (model: %.1f)\n", accelerator->name.c_str(),
              EffectiveEvery(options), rate, options.lines_per_second);
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
  // Within 4x either way of the model (a loaded machine, another host); a fixed every=500
  // would print ~2,700 lines/s under TCG and fail this.
  EXPECT_GT(rate, options.lines_per_second / 4);
  EXPECT_LT(rate, options.lines_per_second * 4);
}

TEST(GuestBootTest, DirtyRateKnobAndLineIntervalComeFromTheCommandLine) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  // With every=1 each pass prints; the guest must still count 1, 2, 3 exactly.
  Result<std::unique_ptr<TestGuest>> guest = TestGuest::StartCounter({.pages = 1, .every = 1}, "knob");
  ASSERT_TRUE(guest.ok()) << guest.status();
  CounterTranscript transcript;
  Deadline deadline = Deadline::AfterMillis(60000);
  while (transcript.lines_observed() < 200) {
    Result<std::string> line = (*guest)->console().ReadLine(deadline);
    ASSERT_TRUE(line.ok()) << line.status();
    transcript.Observe(*line);
  }
  EXPECT_TRUE(transcript.continuous()) << *transcript.violation();
}

}  // namespace
}  // namespace understudy::testing
