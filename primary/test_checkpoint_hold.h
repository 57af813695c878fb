// TestCheckpointHold: TEST ONLY. Holds QEMU's VM stopped at one chosen checkpoint — after the
// primary captured and submitted epoch N, before it answers vmstate-loaded — until released,
// so a test can read the stopped guest's RAM and compare it with the secondary's committed
// image of epoch N (tests/e2e/ram_equality_test.cc). While held no further checkpoint starts,
// so the secondary's image stays at epoch N too.
//
// Reached only through the control commands AddControlCommands registers, which the agent
// offers only with "test_only": {"control_commands": true}. Never part of a production path.
//
// Thread safety: all members may be called from any thread.
#ifndef UNDERSTUDY_PRIMARY_TEST_CHECKPOINT_HOLD_H_
#define UNDERSTUDY_PRIMARY_TEST_CHECKPOINT_HOLD_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/status.h"
#include "control/control_server.h"

namespace understudy::primary {

class TestCheckpointHold {
 public:
  // On the COLO peer's thread, with `epoch` just submitted: waits while a hold is armed for
  // `epoch` and not released, or `stop` is set. Always OK.
  Status WaitIfHeld(uint64_t epoch, const std::atomic<bool>& stop);
  // Arms a hold for `epoch` (from the configuration, before any checkpoint: e.g. the first
  // COLO checkpoint, which is gone before a control command could ask for it).
  void Arm(uint64_t epoch);

  // Adds test_hold_checkpoint {"epoch": N} (arm; N must be in the future, see
  // `captured_epoch`), test_held_checkpoint {} (→ {"held_epoch": N or 0}) and
  // test_release_checkpoint {} (→ {"released_epoch": N or 0}).
  // `captured_epoch` reports the last epoch captured so far.
  void AddControlCommands(std::map<std::string, control::Handler>& handlers,
                          std::function<uint64_t()> captured_epoch);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t armed_epoch_ = 0;  // 0: none
  uint64_t held_epoch_ = 0;   // the epoch the VM is stopped at right now; 0: none
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_TEST_CHECKPOINT_HOLD_H_
