// Recording a real COLO stream: the counter guest (under the chosen accelerator: KVM, or TCG
// with the TCG vehicle, whose patched QEMU is the only 7.2 that runs a COLO primary under TCG)
// becomes a COLO primary whose
// secondary is a ColoPeer; every byte QEMU sends is kept, with what the guest's console had
// printed when each checkpoint was acknowledged. Tests and benchmarks parse, replay and
// mangle such recordings.
#ifndef UNDERSTUDY_TESTS_HARNESS_COLO_RECORDING_H_
#define UNDERSTUDY_TESTS_HARNESS_COLO_RECORDING_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.h"
#include "primary/colo_peer.h"
#include "qemu/vm_definition.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {

struct ColoRecordingOptions {
  CounterGuestOptions guest;
  int checkpoints = 20;
  std::chrono::milliseconds checkpoint_delay{50};
  // Consumer to run during recording (e.g. to stage); may be null.
  checkpoint::QemuStreamVisitor* consumer = nullptr;
};

struct ColoRecording {
  std::vector<std::byte> stream;                       // everything QEMU sent, in order
  std::vector<primary::CheckpointTiming> checkpoints;  // as acknowledged
  // Console lines observed (by a reader thread) when checkpoint i was acknowledged.
  std::vector<uint64_t> lines_seen_at_ack;
  uint64_t lines_seen_at_end = 0;
  qemu::VmDefinition definition;  // what the primary ran (serial path is host-local)
};

// Boots the counter guest, waits for its first console line, starts COLO and records until
// `checkpoints` checkpoints were acknowledged. The guest is torn down before returning.
Result<ColoRecording> RecordColoStream(const ColoRecordingOptions& options);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_COLO_RECORDING_H_
