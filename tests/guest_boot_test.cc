// Boots the counter guest under KVM and checks what an observer of its console sees.
#include <gtest/gtest.h>

#include "tests/harness/counter_transcript.h"
#include "tests/harness/require_kvm.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {
namespace {

TEST(GuestBootTest, CounterGuestPrintsAContinuousSequenceUnderKvm) {
  UNDERSTUDY_REQUIRE_KVM();
  Result<std::unique_ptr<TestGuest>> guest = TestGuest::StartCounter({.pages = 64, .every = 500}, "boot");
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

  // The guest really runs under KVM, not a silent TCG fallback.
  Result<nlohmann::json> kvm = (*guest)->process().qmp().Execute("query-kvm", Deadline::AfterMillis(5000));
  ASSERT_TRUE(kvm.ok()) << kvm.status();
  EXPECT_TRUE((*kvm)["enabled"].get<bool>()) << kvm->dump();
}

TEST(GuestBootTest, DirtyRateKnobAndLineIntervalComeFromTheCommandLine) {
  UNDERSTUDY_REQUIRE_KVM();
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
