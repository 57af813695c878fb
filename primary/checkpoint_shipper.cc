#include "primary/checkpoint_shipper.h"

#include <optional>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "common/log.h"
#include "replication/agent_protocol.h"

namespace understudy::primary {

namespace {
constexpr auto kSendBudget = std::chrono::seconds(10);
}

CheckpointShipper::CheckpointShipper(std::unique_ptr<transport::Channel> channel, OutputBuffer& console_output,
                                     console::ReleasedLog& released_console, ShipperOptions options)
    : channel_(std::move(channel)),
      console_output_(console_output),
      released_console_(released_console),
      options_(std::move(options)) {
  ship_thread_ = std::thread([this] { ShipLoop(); });
  ack_thread_ = std::thread([this] { AckLoop(); });
}

CheckpointShipper::~CheckpointShipper() { Stop(/*goodbye=*/false); }

Status CheckpointShipper::WaitForRoom(Deadline deadline) {
  CheckCaps();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (stats_.fenced) return Status::FailedPrecondition("fenced: another host owns the VM");
    if (stats_.unprotected) return Status::Ok();
    if (stats_.captured_epoch - stats_.acked_epoch < options_.max_in_flight) return Status::Ok();
    if (changed_.wait_until(lock, deadline.when()) == std::cv_status::timeout) {
      return Status::DeadlineExceeded(std::to_string(stats_.captured_epoch - stats_.acked_epoch) +
                                      " checkpoints unacknowledged (secondary at epoch " +
                                      std::to_string(stats_.acked_epoch) + ")");
    }
  }
}

void CheckpointShipper::Submit(EpochCapture capture) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.captured_epoch = capture.epoch;
  queue_.push_back(std::move(capture));
  changed_.notify_all();
}

void CheckpointShipper::Stop(bool goodbye) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (goodbye) {
      changed_.wait_for(lock, std::chrono::seconds(10), [&] { return queue_.empty() || stats_.secondary_lost; });
    }
    if (stopping_) return;
    stopping_ = true;
    changed_.notify_all();
  }
  if (ship_thread_.joinable()) ship_thread_.join();
  if (goodbye) {
    std::lock_guard<std::mutex> lock(send_mutex_);
    (void)channel_->Close(Deadline::AfterMillis(1000));
  }
  if (ack_thread_.joinable()) ack_thread_.join();
}

ShipperStats CheckpointShipper::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

Status CheckpointShipper::SendControl(const std::string& message) {
  std::unique_lock<std::mutex> lock(send_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return Status::Ok();  // a checkpoint is going out: that is traffic too
  // The same budget as a checkpoint: a control message that gives up mid-way breaks the
  // channel for everything after it.
  return channel_->Send(std::as_bytes(std::span(message.data(), message.size())), Deadline::After(kSendBudget));
}

void CheckpointShipper::GoUnprotected() {
  bool over_cap;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.fenced) return;
    stats_.unprotected = true;
    unacked_.clear();
    stats_.in_flight_bytes = 0;
    over_cap = stats_.over_cap;
    changed_.notify_all();
  }
  Status released = ReleaseOutputs(UINT64_MAX);
  if (!released.ok()) Log("primary", "releasing held output: " + released.ToString());
  if (over_cap) {
    // The secondary may be alive and well: a goodbye tells it to keep its standby and wait
    // (never promote), and a new pairing protects the VM again.
    std::lock_guard<std::mutex> lock(send_mutex_);
    (void)channel_->Close(Deadline::AfterMillis(1000));
  }
}

void CheckpointShipper::CheckCaps() {
  ByteUsage usage;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.over_cap || stats_.unprotected || stats_.fenced) return;
    usage.in_flight_bytes = stats_.in_flight_bytes;
  }
  usage.held_output_bytes =
      console_output_.held_bytes() + (options_.network_output ? options_.network_output->held_bytes() : 0);
  usage.unshipped_disk_bytes = options_.unshipped_disk_bytes ? options_.unshipped_disk_bytes() : 0;
  if (std::optional<CapCrossing> crossed = CrossedCap(options_.caps, usage)) CrossCap(*crossed);
}

void CheckpointShipper::CrossCap(const CapCrossing& crossing) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.over_cap || stats_.unprotected || stats_.fenced) return;
    stats_.over_cap = true;
    stats_.cap_crossed = crossing.cap;
    stats_.secondary_lost = true;
    stats_.last_error = "byte cap crossed: " + crossing.why;
    changed_.notify_all();
  }
  Log("primary", "pair event: byte cap crossed (" + crossing.why +
                     "); nothing more is shipped, output stays held until this host owns the record unprotected");
  if (options_.on_cap_crossed) options_.on_cap_crossed(crossing);
}

Status CheckpointShipper::ReleaseOutputs(uint64_t epoch) {
  if (!options_.releases_output) return Status::Ok();
  if (options_.network_output) {
    UNDERSTUDY_RETURN_IF_ERROR(options_.network_output->Release(epoch, *options_.released_network));
  }
  return console_output_.Release(epoch, released_console_);
}

void CheckpointShipper::Fence() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.fenced = true;
  stats_.unprotected = false;
  changed_.notify_all();
}

void CheckpointShipper::MarkLost(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.secondary_lost) return;
    Log("primary", "secondary lost, output held: " + why.ToString());
    stats_.secondary_lost = true;
    stats_.last_error = why.ToString();
    changed_.notify_all();
  }
  if (options_.on_lost) options_.on_lost(why);
}

void CheckpointShipper::ShipLoop() {
  for (;;) {
    EpochCapture capture;
    bool unprotected;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // With the secondary lost, captures wait here (bounded by WaitForRoom) until the
      // arbiter decides: unprotected releases them, fenced never does.
      changed_.wait(lock, [&] {
        return stopping_ || (!queue_.empty() && (!stats_.secondary_lost || stats_.unprotected));
      });
      if (stopping_ && (queue_.empty() || stats_.secondary_lost)) return;
      capture = std::move(queue_.front());
      unprotected = stats_.unprotected;
    }
    Status shipped = unprotected ? ReleaseOutputs(capture.epoch) : Ship(capture);
    capture.pages.clear();  // views into the chunks, which go back to the capture arena's pool
    capture.chunks.clear();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.pop_front();
      changed_.notify_all();
    }
    if (!shipped.ok()) MarkLost(shipped.WithContext("shipping epoch " + std::to_string(capture.epoch)));
  }
}

Status CheckpointShipper::Ship(EpochCapture& capture) {
  checkpoint::Checkpoint checkpoint;
  checkpoint.epoch = capture.epoch;
  if (capture.ram_blocks) {
    UNDERSTUDY_ASSIGN_OR_RETURN(image_, checkpoint::RamImage::Create(*capture.ram_blocks));
    checkpoint.full = true;
    checkpoint.machine_definition_json = capture.machine_definition_json;
    checkpoint.ram_blocks = capture.ram_blocks;
    checkpoint.stream_info = capture.stream_info;
  }
  if (!image_) return Status::FailedPrecondition("epoch " + std::to_string(capture.epoch) + " before the initial image");
  for (const CapturedPage& page : capture.pages) {
    Status staged = page.zero ? image_->StageZeroPage(page.block, page.offset)
                              : image_->StagePage(page.block, page.offset, page.view());
    UNDERSTUDY_RETURN_IF_ERROR(staged);
  }
  checkpoint.base_epoch = image_->committed_epoch();
  checkpoint.page_runs = checkpoint::EncodeStagedPages(*image_, options_.encoder);
  checkpoint.device_state = std::move(capture.device_state);
  checkpoint.outputs.push_back(std::move(capture.console_output));
  if (!capture.network_output.bytes.empty()) checkpoint.outputs.push_back(std::move(capture.network_output));
  checkpoint.disk_writes = std::move(capture.disk_writes);
  checkpoint.disk_flushed = capture.disk_flushed;
  checkpoint.disk_sync_incomplete = capture.disk_sync_incomplete;
  image_->CommitStaged(capture.epoch);
  std::string bytes = checkpoint::SerializeCheckpoint(checkpoint);
  const uint64_t pages = checkpoint.page_count();
  checkpoint = {};  // its copies of the output and disk writes are in `bytes` now
  if (auto too_big = CrossedFrameCap(capture.epoch, bytes.size() + 1, options_.max_message_bytes)) {
    CrossCap(*too_big);  // never sent: the secondary could not take it
    return Status::Ok();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.in_flight_bytes += bytes.size();
    unacked_.push_back({capture.epoch, bytes, capture.stopped_at});
    stats_.pages_sent += pages;
    stats_.raw_page_bytes += pages * 4096;
  }
  CheckCaps();
  UNDERSTUDY_RETURN_IF_ERROR(SendCheckpoint(capture.epoch, bytes, /*first_transmission=*/true));
  if (options_.on_shipped) options_.on_shipped(pages, pages * 4096, bytes.size() + 1);
  return Status::Ok();
}

Status CheckpointShipper::Resend(uint64_t from_epoch) {
  // Holding the send lock for the whole batch keeps it contiguous on the channel: a new
  // epoch cannot slip in between and arrive out of order again.
  std::lock_guard<std::mutex> send_lock(send_mutex_);
  std::vector<std::pair<uint64_t, std::string>> resend;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.nacks;
    for (const UnackedEpoch& entry : unacked_) {
      if (entry.epoch >= from_epoch) resend.emplace_back(entry.epoch, entry.bytes);
    }
  }
  for (const auto& [epoch, bytes] : resend) UNDERSTUDY_RETURN_IF_ERROR(SendLocked(epoch, bytes, false));
  return Status::Ok();
}

Status CheckpointShipper::SendCheckpoint(uint64_t epoch, const std::string& bytes, bool first_transmission) {
  std::lock_guard<std::mutex> lock(send_mutex_);
  return SendLocked(epoch, bytes, first_transmission);
}

Status CheckpointShipper::SendLocked(uint64_t epoch, const std::string& bytes, bool first_transmission) {
  const std::byte tag[1] = {replication::kCheckpointTag};
  std::string corrupted;
  std::span<const std::byte> body = std::as_bytes(std::span(bytes.data(), bytes.size()));
  if (first_transmission && options_.test_corrupt_epoch == epoch) {
    corrupted = bytes;
    corrupted[corrupted.size() / 2] ^= 0x20;
    body = std::as_bytes(std::span(corrupted.data(), corrupted.size()));
    Log("primary", "TEST ONLY: corrupting checkpoint " + std::to_string(epoch) + " in transit");
  }
  transport::MessagePart parts[] = {tag, body};
  UNDERSTUDY_RETURN_IF_ERROR(channel_->Send(parts, Deadline::After(kSendBudget)));
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.shipped_epoch = std::max(stats_.shipped_epoch, epoch);
  stats_.bytes_sent += bytes.size() + 1;
  return Status::Ok();
}

bool CheckpointShipper::HandleAck(uint64_t epoch) {
  std::optional<std::chrono::steady_clock::time_point> stopped_at;
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.fenced) return false;  // a fenced primary releases nothing, acked or not
    // Going unprotected released everything and forgot what was in flight: an ack that
    // was already on its way names an epoch no longer listed, and changes nothing.
    if (stats_.unprotected) return true;
    if (epoch <= stats_.acked_epoch) return true;  // a repeat: nothing more to release
    // An ack releases output, so it must name an epoch that was shipped and is still
    // unacknowledged: acking one that was only captured (its output already sealed) or
    // never existed would release what the secondary never committed.
    bool shipped = false;
    for (const UnackedEpoch& entry : unacked_) shipped = shipped || entry.epoch == epoch;
    if (!shipped) {
      refused = Status::Corruption("the secondary acknowledged epoch " + std::to_string(epoch) +
                                   ", which was never shipped (last shipped " + std::to_string(stats_.shipped_epoch) +
                                   ", acknowledged " + std::to_string(stats_.acked_epoch) + ")");
    } else {
      stats_.acked_epoch = epoch;
      while (!unacked_.empty() && unacked_.front().epoch <= epoch) {
        if (unacked_.front().epoch == epoch) stopped_at = unacked_.front().stopped_at;
        stats_.in_flight_bytes -= unacked_.front().bytes.size();
        unacked_.pop_front();
      }
      changed_.notify_all();
    }
  }
  // A peer that acknowledges what it never received cannot be trusted with the next ack
  // either: nothing is released and the secondary counts as lost (the arbiter decides).
  if (!refused.ok()) {
    MarkLost(refused);
    return false;
  }
  if (stopped_at && options_.on_acked) options_.on_acked(epoch, std::chrono::steady_clock::now() - *stopped_at);
  Status released = ReleaseOutputs(epoch);
  if (!released.ok()) Log("primary", "releasing console output: " + released.ToString());
  return true;
}

void CheckpointShipper::AckLoop() {
  std::vector<std::byte> message;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || stats_.secondary_lost) return;
    }
    Status received = channel_->Receive(message, Deadline::AfterMillis(100));
    if (received.code() == Status::Code::kDeadlineExceeded) continue;
    if (!received.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    if (!received.ok()) return MarkLost(received);
    if (options_.on_peer_message) options_.on_peer_message();
    Result<replication::MessageType> type = replication::TypeOf(message);
    if (type.ok() && *type == replication::MessageType::kHeartbeat) continue;
    if (type.ok() && *type == replication::MessageType::kHello) {
      Result<replication::Hello> hello = replication::DecodeHello(message);
      if (hello.ok() && options_.on_hello) options_.on_hello(*hello);
      continue;
    }
    Result<replication::AckMessage> ack = replication::DecodeAck(message);
    if (!ack.ok()) return MarkLost(ack.status());
    if (ack->type == replication::MessageType::kAck) {
      if (!HandleAck(ack->epoch)) return;
      continue;
    }
    // NACK: the secondary rejected `epoch` (damaged, or out of order after an earlier
    // rejection); resend it and everything after it, in order.
    Log("primary", "secondary asks for checkpoint " + std::to_string(ack->epoch) + " again (" + ack->reason + ")");
    Status resent = Resend(ack->epoch);
    if (!resent.ok()) return MarkLost(resent);
  }
}

}  // namespace understudy::primary
