#include "primary/owner_display_state.h"

#include <gtest/gtest.h>

namespace understudy::primary {
namespace {

using failover::ControllerState;

TEST(OwnerDisplayStateTest, AFirstPairingSyncsAndIsProtectedOnlyOnceTheSecondaryCouldTakeOver) {
  OwnerDisplayState display;
  EXPECT_EQ(display.Next(ControllerState::kSyncing, false), "syncing");
  // The first ack arrived, but the secondary's disk copy is still running.
  EXPECT_EQ(display.Next(ControllerState::kProtected, false), "syncing");
  EXPECT_EQ(display.Next(ControllerState::kProtected, true), "protected");
  EXPECT_EQ(display.Next(ControllerState::kContending, true), "failing-over");
}

TEST(OwnerDisplayStateTest, APairingAfterRunningAloneIsAReprotectionUntilTheSecondaryIsReady) {
  OwnerDisplayState display;
  EXPECT_EQ(display.Next(ControllerState::kProtected, true), "protected");
  EXPECT_EQ(display.Next(ControllerState::kUnprotected, false), "unprotected");
  // The controller's own re-protecting state may pass unseen between two looks.
  EXPECT_EQ(display.Next(ControllerState::kSyncing, false), "re-protecting");
  EXPECT_EQ(display.Next(ControllerState::kProtected, false), "re-protecting");
  EXPECT_EQ(display.Next(ControllerState::kProtected, true), "protected");
  // Ready once: a later pairing from a healthy pair is not a re-protection.
  EXPECT_EQ(display.Next(ControllerState::kSyncing, false), "syncing");
}

TEST(OwnerDisplayStateTest, APromotedStandbysFirstPairingIsAReprotection) {
  OwnerDisplayState promoted(/*starts_alone=*/true);
  EXPECT_EQ(promoted.Next(ControllerState::kSyncing, false), "re-protecting");
  // Negative control: the same sequence on an owner that did not start alone reads "syncing",
  // so the flag is what names it.
  OwnerDisplayState first;
  EXPECT_EQ(first.Next(ControllerState::kSyncing, false), "syncing");
}

}  // namespace
}  // namespace understudy::primary
