// StandbyVerifier: continuous proof that the saved state really loads. Now and then it takes
// the latest committed checkpoint — a copy of the committed RAM image and device state,
// made on the agent's thread in a few milliseconds — and, on a thread of its own, loads it
// into a scratch QEMU (never the ready standby), lets the guest run briefly, checks QEMU
// still reports it running, and tears the scratch QEMU down. A failure is recorded with
// QEMU's own error; the standby is never touched.
//
// Rate limit: at most one verification at a time and one start per period, so a slow or
// failing verification never piles up; the scratch QEMU and the verifier's thread run at low
// priority (nice 10), so they never delay the agent's heartbeats or the ready standby.
//
// Thread safety: MaybeStart() from the owner's thread; last() from any.
#ifndef UNDERSTUDY_SECONDARY_STANDBY_VERIFIER_H_
#define UNDERSTUDY_SECONDARY_STANDBY_VERIFIER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "checkpoint/ram_image.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "qemu/vm_definition.h"

namespace understudy::secondary {

struct VerificationResult {
  bool succeeded = false;
  uint64_t epoch = 0;            // the committed checkpoint that was loaded
  double duration_seconds = 0;   // copy excluded: scratch QEMU start to teardown
  std::string error;             // QEMU's error, when it failed
  std::chrono::system_clock::time_point finished;
};

struct StandbyVerifierOptions {
  std::chrono::milliseconds period{300000};  // between starts
  std::chrono::milliseconds run_for{300};    // how long the loaded guest must keep running
  std::string runtime_dir;                   // the scratch QEMU's own directory
  std::string qemu_binary = "qemu-system-x86_64";
};

class StandbyVerifier {
 public:
  // The first verification runs one period after construction, not at the first commit: a
  // pair that just finished its initial sync is busy enough.
  StandbyVerifier(StandbyVerifierOptions options, std::function<void(const VerificationResult&)> on_result)
      : options_(std::move(options)),
        on_result_(std::move(on_result)),
        next_start_(std::chrono::steady_clock::now() + options_.period) {}
  ~StandbyVerifier();

  // Starts a verification of this committed state if one is due and none is running.
  void MaybeStart(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                  const checkpoint::RamImage& image, const std::string& device_state);

  std::optional<VerificationResult> last() const EXCLUDES(mutex_);

 private:
  VerificationResult Verify(const qemu::VmDefinition& definition, const checkpoint::QemuStreamInfo& stream_info,
                            const checkpoint::RamImage& image, const std::string& device_state);

  const StandbyVerifierOptions options_;
  const std::function<void(const VerificationResult&)> on_result_;
  std::chrono::steady_clock::time_point next_start_;  // owner's thread only
  std::atomic<bool> running_{false};
  std::thread thread_;
  mutable Mutex mutex_;
  std::optional<VerificationResult> last_ GUARDED_BY(mutex_);
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_STANDBY_VERIFIER_H_
