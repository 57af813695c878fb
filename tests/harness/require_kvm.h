// UNDERSTUDY_REQUIRE_KVM(): at the top of a gtest body, skips the test — visibly, counted as
// skipped — when this machine cannot run KVM guests. Never lets such a test pass silently.
// Only for tests that need KVM itself; a test that just needs a guest uses
// UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR() (require_guest_accelerator.h), which runs it under the
// TCG vehicle where KVM is missing.
#ifndef UNDERSTUDY_TESTS_HARNESS_REQUIRE_KVM_H_
#define UNDERSTUDY_TESTS_HARNESS_REQUIRE_KVM_H_

#include <gtest/gtest.h>

#include "tests/harness/test_guest.h"

#define UNDERSTUDY_REQUIRE_KVM()                                                        \
  do {                                                                                  \
    if (auto understudy_kvm_reason_ = ::understudy::testing::KvmUnavailableReason()) { \
      GTEST_SKIP() << "skipped: needs KVM: " << *understudy_kvm_reason_;               \
    }                                                                                   \
  } while (0)

#endif  // UNDERSTUDY_TESTS_HARNESS_REQUIRE_KVM_H_
