// UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR(): at the top of a gtest body, skips the test — visibly,
// counted as skipped, with the reason — only when this machine can run test guests neither
// under KVM nor under the TCG vehicle (tests/harness/guest_accelerator.h). Tests that need KVM
// itself use UNDERSTUDY_REQUIRE_KVM() (require_kvm.h) instead.
#ifndef UNDERSTUDY_TESTS_HARNESS_REQUIRE_GUEST_ACCELERATOR_H_
#define UNDERSTUDY_TESTS_HARNESS_REQUIRE_GUEST_ACCELERATOR_H_

#include <gtest/gtest.h>

#include "tests/harness/guest_accelerator.h"

#define UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR()                                                         \
  do {                                                                                                 \
    if (auto understudy_accel_reason_ = ::understudy::testing::GuestAcceleratorUnavailableReason()) { \
      GTEST_SKIP() << "skipped: " << *understudy_accel_reason_;                                       \
    }                                                                                                  \
  } while (0)

#endif  // UNDERSTUDY_TESTS_HARNESS_REQUIRE_GUEST_ACCELERATOR_H_
