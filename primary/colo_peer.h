// ColoPeer: plays QEMU's COLO secondary on one end of the migration socket.
//
// QEMU (the protected VM, in COLO mode) believes it talks to a secondary QEMU. ColoPeer reads
// the stream with a QemuStreamReader, hands every parsed unit to the consumer (which stages
// the checkpoint), and answers QEMU's protocol itself:
//
//   initial precopy parsed            → checkpoint-ready
//   checkpoint-request                → [before_reply gate: back-pressure] → checkpoint-reply
//                                        (QEMU stops the VM now)
//   live RAM + device state consumed  → vmstate-received, vmstate-loaded (QEMU resumes)
//
// The acknowledgement goes out as soon as the consumer has staged the checkpoint in memory —
// never after a network round trip — which is what keeps the VM's pause short.
//
// Every read has a deadline: QEMU silent for longer than `idle_timeout` is an error, never a
// hang. Thread safety: Run() on one thread; RequestStop() from any.
#ifndef UNDERSTUDY_PRIMARY_COLO_PEER_H_
#define UNDERSTUDY_PRIMARY_COLO_PEER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

#include "checkpoint/qemu_stream_reader.h"
#include "common/deadline.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "primary/stream_read_buffer.h"

namespace understudy::primary {

struct CheckpointTiming {
  uint64_t number = 0;                        // 1 for the first checkpoint after the precopy
  uint64_t pages = 0;                         // RAM pages it carried (zero pages included)
  std::chrono::steady_clock::time_point reply_sent;   // QEMU stops the VM after this
  // Where the pause goes (primary/pause_phases.h): QEMU announces vmstate-send once the VM is
  // stopped (vm_stop, block drain and flush); then it saves device state into a buffer, syncs
  // the dirty bitmap and streams the RAM (its END section); then the buffered device state.
  std::chrono::steady_clock::time_point vmstate_send_seen;
  std::chrono::steady_clock::time_point ram_end_seen;
  std::chrono::steady_clock::time_point loaded_sent;  // QEMU resumes the VM after this
  // Inside the pause, how long this agent's thread was busy parsing, capturing and handing
  // over the checkpoint; the rest of the pause it waited for QEMU's bytes.
  std::chrono::nanoseconds agent_busy{0};
  std::chrono::nanoseconds pause() const { return loaded_sent - reply_sent; }
};

struct ColoPeerOptions {
  // QEMU sends a checkpoint-request every x-checkpoint-delay ms; silence this long means it is
  // wedged or gone.
  std::chrono::milliseconds idle_timeout{10000};
  // Where the stream is read into (the capture arena, so pages need no copy); nullptr: a
  // scratch buffer of the peer's own. Must outlive Run().
  StreamReadBuffer* read_buffer = nullptr;
  // Called with every chunk read from QEMU, before parsing (recording, byte counters).
  std::function<void(std::span<const std::byte>)> raw_tap;
  // Called before checkpoint-reply; may wait (back-pressure) until its deadline. A failure
  // stops the peer.
  std::function<Status(Deadline)> before_reply;
  // TEST ONLY (unset in production): called after a checkpoint was consumed and before
  // vmstate-received/vmstate-loaded go out, i.e. while QEMU keeps the VM stopped; may wait
  // (the RAM-equality oracle reads the stopped guest's memory then). A failure stops the peer.
  std::function<Status()> test_before_loaded;
  // Called after vmstate-loaded went out.
  std::function<void(const CheckpointTiming&)> on_checkpoint_acked;
  // Called once checkpoint-ready went out (the precopy is fully consumed).
  std::function<void()> on_precopy_complete;
};

class ColoPeer {
 public:
  // `consumer` receives every parsed unit and must outlive Run().
  ColoPeer(UniqueFd qemu_socket, checkpoint::QemuStreamVisitor& consumer, ColoPeerOptions options = {});
  ~ColoPeer();

  // Serves QEMU until it closes the stream (kPeerClosed), an error, or RequestStop() (OK).
  Status Run();
  void RequestStop() { stop_requested_.store(true); }

  const checkpoint::QemuStreamReader& reader() const { return reader_; }

 private:
  class ProtocolVisitor;  // forwards to the consumer and answers QEMU

  Status Send(checkpoint::qemu_stream::ColoMessage message);

  UniqueFd socket_;
  ColoPeerOptions options_;
  std::unique_ptr<ProtocolVisitor> protocol_;
  checkpoint::QemuStreamReader reader_;
  std::atomic<bool> stop_requested_{false};
  CheckpointTiming current_;
  bool in_pause_ = false;  // between checkpoint-reply and vmstate-loaded
  std::chrono::steady_clock::time_point feed_started_;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_COLO_PEER_H_
