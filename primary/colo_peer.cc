#include "primary/colo_peer.h"

#include <array>
#include <vector>

#include "common/byte_order.h"
#include "common/fd_io.h"

namespace understudy::primary {

namespace qs = checkpoint::qemu_stream;

namespace {
// Writes to QEMU's socket are tiny; QEMU reads them promptly unless it is gone.
constexpr auto kSendBudget = std::chrono::seconds(5);
// Reads wake this often to notice RequestStop().
constexpr auto kStopPollInterval = std::chrono::milliseconds(100);

// Without a read buffer from the caller: one buffer, reused for every read.
class ScratchReadBuffer : public StreamReadBuffer {
 public:
  Result<std::span<std::byte>> NextReadSpace() override { return std::span<std::byte>(bytes_); }
  std::span<const std::byte> Filled(size_t count) override { return std::span(bytes_).first(count); }

 private:
  std::vector<std::byte> bytes_ = std::vector<std::byte>(1 << 20);
};
}  // namespace

class ColoPeer::ProtocolVisitor : public checkpoint::QemuStreamVisitor {
 public:
  ProtocolVisitor(ColoPeer& peer, checkpoint::QemuStreamVisitor& consumer) : peer_(peer), consumer_(consumer) {}

  Status OnConfiguration(const checkpoint::StreamConfiguration& configuration) override {
    return consumer_.OnConfiguration(configuration);
  }
  Status OnCommand(uint16_t command, std::span<const std::byte> data) override {
    return consumer_.OnCommand(command, data);
  }
  Status OnRamBlocks(const checkpoint::RamBlockList& blocks) override { return consumer_.OnRamBlocks(blocks); }
  Status OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) override {
    ++peer_.current_.pages;
    return consumer_.OnRamPage(block, offset, page);
  }
  Status OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) override {
    ++peer_.current_.pages;
    return consumer_.OnRamZeroPage(block, offset, fill);
  }
  Status OnRamSectionEnd(checkpoint::RamSectionKind kind) override {
    if (peer_.in_pause_) peer_.current_.ram_end_seen = std::chrono::steady_clock::now();
    return consumer_.OnRamSectionEnd(kind);
  }

  Status OnVmDescription(std::string_view json, const std::vector<checkpoint::DeviceSectionSpan>& sections) override {
    UNDERSTUDY_RETURN_IF_ERROR(consumer_.OnVmDescription(json, sections));
    UNDERSTUDY_RETURN_IF_ERROR(peer_.Send(qs::ColoMessage::kCheckpointReady));
    if (peer_.options_.on_precopy_complete) peer_.options_.on_precopy_complete();
    return Status::Ok();
  }

  Status OnColoMessage(qs::ColoMessage message) override {
    if (message == qs::ColoMessage::kVmstateSend) peer_.current_.vmstate_send_seen = std::chrono::steady_clock::now();
    UNDERSTUDY_RETURN_IF_ERROR(consumer_.OnColoMessage(message));
    if (message != qs::ColoMessage::kCheckpointRequest) return Status::Ok();
    peer_.current_.pages = 0;
    if (peer_.options_.before_reply) {
      UNDERSTUDY_RETURN_IF_ERROR(peer_.options_.before_reply(Deadline::After(peer_.options_.idle_timeout)));
    }
    UNDERSTUDY_RETURN_IF_ERROR(peer_.Send(qs::ColoMessage::kCheckpointReply));
    peer_.current_.reply_sent = std::chrono::steady_clock::now();
    peer_.current_.agent_busy = std::chrono::nanoseconds(0);
    peer_.in_pause_ = true;
    peer_.feed_started_ = peer_.current_.reply_sent;  // only the pause's share of this chunk
    return Status::Ok();
  }

  Status OnDeviceState(std::span<const std::byte> sections_and_eof) override {
    UNDERSTUDY_RETURN_IF_ERROR(consumer_.OnDeviceState(sections_and_eof));
    // The precopy's device state is acknowledged by checkpoint-ready (after the VM
    // description); a checkpoint's by received + loaded, right now.
    if (!peer_.reader_.precopy_complete()) return Status::Ok();
    if (peer_.options_.test_before_loaded) UNDERSTUDY_RETURN_IF_ERROR(peer_.options_.test_before_loaded());
    UNDERSTUDY_RETURN_IF_ERROR(peer_.Send(qs::ColoMessage::kVmstateReceived));
    UNDERSTUDY_RETURN_IF_ERROR(peer_.Send(qs::ColoMessage::kVmstateLoaded));
    peer_.current_.loaded_sent = std::chrono::steady_clock::now();
    peer_.current_.agent_busy += peer_.current_.loaded_sent - peer_.feed_started_;
    peer_.in_pause_ = false;
    peer_.current_.number = peer_.reader_.checkpoints_completed();
    if (peer_.options_.on_checkpoint_acked) peer_.options_.on_checkpoint_acked(peer_.current_);
    return Status::Ok();
  }

 private:
  ColoPeer& peer_;
  checkpoint::QemuStreamVisitor& consumer_;
};

ColoPeer::ColoPeer(UniqueFd qemu_socket, checkpoint::QemuStreamVisitor& consumer, ColoPeerOptions options)
    : socket_(std::move(qemu_socket)),
      options_(std::move(options)),
      protocol_(std::make_unique<ProtocolVisitor>(*this, consumer)),
      reader_(*protocol_) {}

ColoPeer::~ColoPeer() = default;

Status ColoPeer::Send(qs::ColoMessage message) {
  std::array<std::byte, 4> bytes;
  StoreBigEndian<uint32_t>(bytes.data(), static_cast<uint32_t>(message));
  Status status = WriteAll(socket_.get(), bytes, Deadline::After(kSendBudget));
  return status.WithContext("sending " + std::string(qs::ColoMessageName(message)) + " to QEMU");
}

Status ColoPeer::Run() {
  ScratchReadBuffer scratch;
  StreamReadBuffer& buffer = options_.read_buffer ? *options_.read_buffer : scratch;
  Deadline idle = Deadline::After(options_.idle_timeout);
  while (!stop_requested_.load()) {
    Result<std::span<std::byte>> space = buffer.NextReadSpace();
    if (!space.ok()) return space.status().WithContext("making room to read QEMU's migration stream");
    Result<size_t> count = ReadSome(socket_.get(), *space, Deadline::After(kStopPollInterval).Min(idle));
    if (!count.ok()) {
      if (count.status().code() == Status::Code::kDeadlineExceeded && !idle.Expired()) continue;
      if (count.status().code() == Status::Code::kDeadlineExceeded) {
        return Status::DeadlineExceeded("QEMU sent nothing for " + std::to_string(options_.idle_timeout.count()) +
                                        " ms (reader at offset " + std::to_string(reader_.bytes_consumed()) + ")");
      }
      return count.status().WithContext("reading QEMU's migration stream at offset " +
                                        std::to_string(reader_.bytes_consumed()));
    }
    idle = Deadline::After(options_.idle_timeout);
    std::span<const std::byte> chunk = buffer.Filled(*count);
    feed_started_ = std::chrono::steady_clock::now();
    if (options_.raw_tap) options_.raw_tap(chunk);
    UNDERSTUDY_RETURN_IF_ERROR(reader_.Feed(chunk));
    if (in_pause_) current_.agent_busy += std::chrono::steady_clock::now() - feed_started_;
    // Time spent inside Feed (a test hook holding the VM stopped) is not QEMU's silence.
    idle = Deadline::After(options_.idle_timeout);
  }
  return Status::Ok();
}

}  // namespace understudy::primary
