// CheckpointShipper: turns captured epochs into checkpoints, ships them in order to the
// secondary, and releases each epoch's output when the secondary acknowledges it.
//
// Runs two threads: one encodes (pages against the previous epoch, in this agent's own RAM
// image) and sends; one receives acks. At most `max_in_flight` epochs may be captured but
// unacknowledged: WaitForRoom, called before QEMU's next checkpoint may start, blocks until
// there is room — back-pressure reaches QEMU as a later checkpoint-reply, never as unbounded
// memory. A NACK (the secondary rejected a damaged checkpoint) resends every unacknowledged
// checkpoint from that epoch on, in order. An ack must name an epoch that was shipped and is
// unacknowledged (a repeat of an older one is ignored); an ack for any other epoch releases
// nothing and marks the secondary lost.
//
// If the secondary is lost, output stays held and WaitForRoom stalls: releasing output
// without acks is the failover arbiter's decision, not this class's. After the primary wins
// the ownership record, GoUnprotected() releases everything held and every later epoch at
// once; after it loses, Fence() makes sure nothing unacknowledged is ever released.
//
// Memory is bounded in bytes (primary/byte_caps.h): WaitForRoom and every shipment compare
// what is held (unacknowledged checkpoints, held output, unshipped disk writes) with the caps,
// and a checkpoint with the channel's frame cap. Crossing one is the pair event "byte cap
// crossed": stats().over_cap, the secondary counts as lost (nothing more is shipped, output
// stays held) until the primary wins the record and calls GoUnprotected(), which then also
// says goodbye on the channel.
//
// Thread safety: all public methods are thread-safe.
#ifndef UNDERSTUDY_PRIMARY_CHECKPOINT_SHIPPER_H_
#define UNDERSTUDY_PRIMARY_CHECKPOINT_SHIPPER_H_

#include <condition_variable>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/page_codec.h"
#include "checkpoint/ram_image.h"
#include "common/deadline.h"
#include "console/released_log.h"
#include "primary/byte_caps.h"
#include "primary/epoch_capture.h"
#include "primary/output_buffer.h"
#include "replication/agent_protocol.h"
#include "transport/channel.h"

namespace understudy::primary {

struct ShipperOptions {
  size_t max_in_flight = 4;
  checkpoint::PageEncoderOptions encoder;
  // TEST ONLY: flip one byte of this epoch's first transmission (resends are clean).
  std::optional<uint64_t> test_corrupt_epoch;
  // The guest's network frames, when it has a NIC: held and released like the console.
  OutputBuffer* network_output = nullptr;
  console::ReleasedLog* released_network = nullptr;
  // Called (on the ack thread) for every message from the secondary: a liveness signal.
  std::function<void()> on_peer_message;
  // Called (on the ack thread) with the secondary's hello.
  std::function<void(const replication::Hello&)> on_hello;
  // Called (on the shipping thread) once per checkpoint sent: its pages, their raw size and
  // the bytes on the wire.
  std::function<void(uint64_t pages, uint64_t raw_bytes, uint64_t sent_bytes)> on_shipped;
  // Called (on the ack thread) when an epoch is acknowledged, with the time since the VM
  // stopped for it.
  std::function<void(uint64_t epoch, std::chrono::duration<double> since_stop)> on_acked;
  // Memory caps (primary/byte_caps.h) and the channel's frame cap (its max_message_bytes).
  ByteCaps caps;
  uint64_t max_message_bytes = uint64_t{1} << 30;
  // Disk writes recorded but in no checkpoint yet (disk::DiskServer::unsealed_bytes); empty:
  // no disk.
  std::function<uint64_t()> unshipped_disk_bytes;
  // Called once, on the thread that noticed, when a cap is crossed (metrics).
  std::function<void(const CapCrossing&)> on_cap_crossed;
  // Called once, on the thread that noticed, when the secondary is lost: the channel failed
  // (a send that stopped mid-message leaves it unusable for good) or the peer misbehaved.
  // Nothing more is shipped on this channel, so its owner must end the pairing.
  std::function<void(const Status& why)> on_lost;
  // False: the shipper never releases output itself (not on an ack, not unprotected); its
  // owner releases on the PairController's kReleaseUpTo (primary/protection_session.h).
  bool releases_output = true;
};

struct ShipperStats {
  uint64_t captured_epoch = 0;   // last epoch handed to the shipper
  uint64_t shipped_epoch = 0;    // last epoch sent
  uint64_t acked_epoch = 0;      // last epoch the secondary committed
  uint64_t bytes_sent = 0;
  uint64_t pages_sent = 0;
  uint64_t raw_page_bytes = 0;   // 4096 per page sent, for the compression ratio
  uint64_t nacks = 0;
  bool secondary_lost = false;
  bool unprotected = false;  // releasing without acks (the primary owns the record)
  bool fenced = false;       // lost the record: releases nothing more, ever
  bool over_cap = false;     // a byte cap was crossed (the pair event): the secondary is lost
  std::string cap_crossed;   // which: "in_flight", "held_output", "unshipped_disk", "frame"
  uint64_t in_flight_bytes = 0;  // serialized unacknowledged checkpoints
  std::string last_error;
};

class CheckpointShipper {
 public:
  CheckpointShipper(std::unique_ptr<transport::Channel> channel, OutputBuffer& console_output,
                    console::ReleasedLog& released_console, ShipperOptions options);
  ~CheckpointShipper();

  // Returns once fewer than max_in_flight epochs are unacknowledged, or at once when
  // unprotected. kDeadlineExceeded when still full at the deadline (also while the secondary
  // is lost: that stalls, it does not fail); kFailedPrecondition once fenced.
  Status WaitForRoom(Deadline deadline);

  // Sends a control message (hello, heartbeat) between checkpoints. Never blocks behind a
  // checkpoint transfer for long: a heartbeat that cannot go out now is skipped.
  Status SendControl(const std::string& message);

  // The primary won the ownership record: release all held output now and every later epoch
  // as it is sealed; stop shipping.
  void GoUnprotected();
  // The primary lost the ownership record: never release anything unacknowledged again.
  void Fence();

  // Queues an epoch for encoding and shipping. REQUIRES: epochs submitted in order.
  void Submit(EpochCapture capture);

  // Stops both threads. With `goodbye`, first sends everything queued and closes the channel
  // cleanly, so the secondary knows not to promote.
  void Stop(bool goodbye);

  ShipperStats stats() const;

 private:
  void ShipLoop();
  void AckLoop();
  // One ack from the secondary; false when the ack loop must end (fenced, or a lying ack).
  bool HandleAck(uint64_t epoch);
  Status Ship(EpochCapture& capture);
  Status SendCheckpoint(uint64_t epoch, const std::string& bytes, bool first_transmission);
  Status SendLocked(uint64_t epoch, const std::string& bytes, bool first_transmission);  // holds send_mutex_
  Status Resend(uint64_t from_epoch);
  void MarkLost(const Status& why);
  // Compares what is held with options_.caps; crosses the first cap exceeded.
  void CheckCaps();
  void CrossCap(const CapCrossing& crossing);
  // Releases every output stream's epochs up to `epoch`.
  Status ReleaseOutputs(uint64_t epoch);

  std::unique_ptr<transport::Channel> channel_;
  OutputBuffer& console_output_;
  console::ReleasedLog& released_console_;
  const ShipperOptions options_;

  std::unique_ptr<checkpoint::RamImage> image_;  // ship thread only

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  // Protected by mutex_:
  std::deque<EpochCapture> queue_;
  struct UnackedEpoch {
    uint64_t epoch;
    std::string bytes;  // serialized, for resends
    std::chrono::steady_clock::time_point stopped_at;
  };
  std::deque<UnackedEpoch> unacked_;
  ShipperStats stats_;
  bool stopping_ = false;

  std::mutex send_mutex_;  // one sender at a time on the channel
  std::thread ship_thread_;
  std::thread ack_thread_;
};

}  // namespace understudy::primary

#endif  // UNDERSTUDY_PRIMARY_CHECKPOINT_SHIPPER_H_
