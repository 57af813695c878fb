// FrameRelay: moves Ethernet frames between the guest's NIC — QEMU's `-netdev stream`, each
// frame preceded by its length (u32, big-endian) on a UNIX socket — and a tap device.
//
// Frames from the network reach the guest at once: input needs no commit. Frames from the
// guest go where the VM's protection says:
//   kHold     into `hold` (the primary's output buffer, released when the epoch is acked);
//             ReleaseFrom() then writes released frames to the tap;
//   kDirect   straight to the tap (an unprotected or promoted VM);
//   kSilent   nowhere, and network input is dropped too (a standby: its VM is not running,
//             and stale frames must not queue up for the moment it is).
//
// Thread safety: all methods from any thread; the relay runs its own threads.
#ifndef UNDERSTUDY_NETWORK_FRAME_RELAY_H_
#define UNDERSTUDY_NETWORK_FRAME_RELAY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "console/released_log.h"

namespace understudy::network {

class FrameRelay {
 public:
  enum class Mode { kHold, kDirect, kSilent };
  // Receives one outbound frame with its length prefix, exactly as QEMU sent it.
  using HoldSink = std::function<void(std::string_view framed)>;

  // `guest` is connected to QEMU's netdev socket, `tap` is from OpenTap().
  static std::unique_ptr<FrameRelay> Start(UniqueFd guest, UniqueFd tap, Mode mode, HoldSink hold = nullptr);
  // Connects to QEMU's netdev socket at `nic_socket` and attaches to `tap` (in `netns`, if
  // given; network/tap_device.h), then starts relaying between them.
  static Result<std::unique_ptr<FrameRelay>> Connect(const std::string& nic_socket, const std::string& tap,
                                                      const std::string& netns, Mode mode, HoldSink hold = nullptr);
  ~FrameRelay();

  void SetMode(Mode mode, HoldSink hold = nullptr);

  // Follows `released` (length-prefixed frames, as `hold` received them) from `offset` and
  // writes each frame to the tap, until the log closes or the relay stops. Once per relay:
  // later calls change nothing.
  void ReleaseFrom(const console::ReleasedLog& released, uint64_t offset);

  struct Counters {
    uint64_t frames_in = 0, frames_out = 0, frames_dropped = 0;
  };
  Counters counters() const;

 private:
  FrameRelay(UniqueFd guest, UniqueFd tap) : guest_(std::move(guest)), tap_(std::move(tap)) {}
  void FromTapLoop();
  void FromGuestLoop();
  void ReleaseLoop(const console::ReleasedLog* released, uint64_t offset);
  void WriteToTap(std::string_view frame);

  UniqueFd guest_;
  UniqueFd tap_;
  std::atomic<bool> stopping_{false};
  Mutex guest_write_mutex_;  // one writer at a time on guest_ (whole frames, never interleaved)
  mutable Mutex mutex_;
  Mode mode_ GUARDED_BY(mutex_) = Mode::kSilent;
  HoldSink hold_ GUARDED_BY(mutex_);
  std::atomic<uint64_t> frames_in_{0}, frames_out_{0}, frames_dropped_{0};
  std::thread from_tap_, from_guest_, release_;
};

}  // namespace understudy::network

#endif  // UNDERSTUDY_NETWORK_FRAME_RELAY_H_
