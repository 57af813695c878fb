// RdmaChannel: the Channel over an RDMA reliable-connected (RC) queue pair, set up with
// librdmacm ("rdma://host:port"). For hosts joined by InfiniBand or RoCE (hardware or the
// rdma_rxe soft-RoCE driver), where checkpoints should not pass through the kernel's TCP
// stack. Not iWARP: the protocol relies on RDMA WRITE WITH IMMEDIATE, which iWARP lacks.
//
// Like plain TCP, RDMA RC traffic is neither encrypted nor authenticated and the peer's
// identity is only its address: DialRdma/ListenRdma refuse unless options.insecure is set.
//
// Design (transport/RDMA.md has the full description, the wire formats and the limits):
//
//  * Each side registers a receive ring of `slot_count` slots of `slot_bytes` bytes
//    (default 256 x 64 KiB = 16 MiB) for remote write, and tells the peer its address, rkey
//    and geometry in the private data of rdma_connect / rdma_accept (see Handshake below).
//  * A message travels as one or more chunks. A chunk is one RDMA WRITE WITH IMMEDIATE into
//    whole, consecutive slots of the peer's ring (never across the ring's end); the 32-bit
//    immediate says "chunk of N bytes, more follow" or "last chunk of N bytes". Every chunk
//    uses at least one slot, so slot credits also bound the peer's posted receives we use.
//  * The sender writes from a registered staging area that mirrors the peer's ring (slot i of
//    staging goes to slot i of the ring). Send copies the caller's parts into it once: callers'
//    buffers are arbitrary heap memory, and registering them on the fly would pin and unpin
//    memory on every message, while an MR cache keyed by address is unsafe without malloc
//    hooks (a freed and reused range keeps a stale registration). memcpy at memory bandwidth
//    is cheaper than ibv_reg_mr for checkpoint-sized messages. Receive copies once more, out
//    of the ring into the caller's vector.
//  * Flow control is by slot credits: the receiver returns consumed slots with a zero-byte
//    SEND WITH IMMEDIATE ("credit: N slots"), in batches of a quarter of the ring, and always
//    before it blocks waiting for data (so neither side can wait for the other forever).
//  * Close() posts an end-of-stream SEND WITH IMMEDIATE and waits until the peer's adapter
//    has acknowledged everything sent. The peer's Receive then returns kPeerClosed; a
//    disconnect (RDMA_CM_EVENT_DISCONNECTED) or a failed completion without that marker is
//    kBroken. Close is a half-close, as for TCP: this side can still receive.
//  * Every blocking call waits with poll(2) on the completion channel's fd, the connection's
//    rdma_cm event fd and an eventfd the other thread uses to wake it, until its Deadline.
//
// Thread safety: as Channel (one sending thread — Send and Close — and one receiving thread
// at a time). Internally one mutex guards the verbs state; whichever thread waits drives the
// completion queue and wakes the other when it finds work for it.
#ifndef UNDERSTUDY_TRANSPORT_RDMA_CHANNEL_H_
#define UNDERSTUDY_TRANSPORT_RDMA_CHANNEL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "common/status.h"
#include "transport/channel.h"

struct ibv_wc;

namespace understudy::transport {

// RDMA-specific tuning; every field has a default that suits checkpoint traffic. Both sides
// may differ: each one's ring is its own, and a listener shrinks its ring to the dialer's
// slot_count if that is smaller (the dialer sized its receive queue before it knew ours).
struct RdmaOptions {
  // Size of one ring slot. Every chunk occupies whole slots, so a 1-byte message uses a full
  // slot: smaller slots waste less ring on small messages, larger ones need fewer slots (and
  // fewer posted receives) per byte. [kMinSlotBytes, kMaxSlotBytes].
  uint32_t slot_bytes = 64u << 10;
  // Slots in the receive ring, and so the most chunks the peer may have in flight towards us.
  // The ring (slot_bytes * slot_count, at most kMaxRingBytes) is registered memory, pinned
  // for the channel's lifetime, and the peer pins a staging area of the same size.
  uint32_t slot_count = 256;
  // Largest RDMA WRITE we post. Bigger chunks mean fewer work requests; smaller ones let the
  // receiver start copying (and returning credit) sooner. Rounded down to whole peer slots,
  // at least one slot.
  uint32_t max_chunk_bytes = 1u << 20;
  // Send queue depth: chunks plus credit and end-of-stream messages not yet acknowledged by
  // the peer's adapter. [4, 16384].
  uint32_t send_queue_depth = 128;
};

// kInvalidArgument, naming the field and its allowed range, for options out of range.
Status ValidateRdmaOptions(const RdmaOptions& options);

// OK when this host has at least one RDMA device and the rdma_cm is usable; otherwise
// kFailedPrecondition whose message explains what is missing (no kernel support, no device,
// no rdma_ucm) and how to get it (transport/RDMA.md).
Status RdmaAvailable();

// Connects to the RDMA listener at host:port (an IPv4 address or name of an RDMA-capable
// interface), retrying while nobody listens yet, until the deadline. kInvalidArgument for
// bad options or without options.insecure; kFailedPrecondition without an RDMA device
// (see RdmaAvailable); kNotFound for an unresolvable host; kDeadlineExceeded.
Result<std::unique_ptr<Channel>> DialRdma(const std::string& host, uint16_t port, const ChannelOptions& options,
                                          Deadline deadline, const RdmaOptions& rdma = RdmaOptions());
// Listens for RDMA connections on host:port (port 0: any; address() tells which).
Result<std::unique_ptr<Listener>> ListenRdma(const std::string& host, uint16_t port, const ChannelOptions& options,
                                             const RdmaOptions& rdma = RdmaOptions());

// The protocol's pure parts, apart from verbs so that they are unit-tested on any host.
namespace rdma_protocol {

inline constexpr uint32_t kMinSlotBytes = 64;
inline constexpr uint32_t kMaxSlotBytes = 64u << 20;
inline constexpr uint32_t kMinSlotCount = 2;
inline constexpr uint32_t kMaxSlotCount = 65536;
inline constexpr uint64_t kMaxRingBytes = 256ull << 20;  // keeps every chunk length < 2^29

// kInvalidArgument unless the geometry is within the limits above.
Status CheckRingGeometry(uint32_t slot_count, uint32_t slot_bytes);

// Slots a chunk of `bytes` occupies: ceil(bytes / slot_bytes), and 1 for an empty chunk.
uint32_t SlotsFor(uint64_t bytes, uint32_t slot_bytes);

// --- Immediate data: kind in bits 31..29, value in bits 28..0 (host order; sent big-endian).
enum class ImmKind : uint32_t {
  kData = 1,         // RDMA WRITE WITH IMM: a chunk of `value` bytes; more of the message follows
  kDataEnd = 2,      // RDMA WRITE WITH IMM: the message's last chunk, of `value` bytes
  kCredit = 3,       // SEND WITH IMM, no payload: `value` slots of the sender's ring are free again
  kEndOfStream = 4,  // SEND WITH IMM, no payload, value 0: the peer called Close()
};
inline constexpr uint32_t kImmValueMask = (1u << 29) - 1;
struct Imm {
  ImmKind kind;
  uint32_t value;
};
// REQUIRES: value <= kImmValueMask.
uint32_t EncodeImm(ImmKind kind, uint32_t value);
// kCorruption for an unknown kind.
Result<Imm> DecodeImm(uint32_t imm);

// --- Handshake: the private data of rdma_connect, rdma_accept and rdma_reject.
// 32 bytes, little-endian (the transport may deliver more, zero-padded: ignored):
//   0 u32 magic "USRD"   4 u16 version   6 u16 type (1 hello, 2 reject)
//   8 u64 ring address  16 u32 ring rkey  20 u32 slot count  24 u32 slot bytes
//  28 u32 reject reason (0 in a hello)
inline constexpr uint32_t kHandshakeMagic = 0x44525355;  // bytes 'U' 'S' 'R' 'D'
inline constexpr uint16_t kHandshakeVersion = 1;
inline constexpr size_t kHandshakeBytes = 32;  // fits RDMA_PS_TCP's 56-byte connect limit

enum class HandshakeType : uint16_t { kHello = 1, kReject = 2 };
enum class RejectReason : uint32_t {
  kNone = 0,
  kMalformedHello = 1,      // the dialer's private data did not decode
  kUnsupportedVersion = 2,  // the dialer speaks a protocol version we do not
  kNoResources = 3,         // the listener could not set up its ring or queue pair
};
std::string_view RejectReasonName(RejectReason reason);

struct Handshake {
  HandshakeType type = HandshakeType::kHello;
  uint16_t version = kHandshakeVersion;
  uint64_t ring_address = 0;
  uint32_t ring_rkey = 0;
  uint32_t slot_count = 0;
  uint32_t slot_bytes = 0;
  RejectReason reject_reason = RejectReason::kNone;
};
std::array<std::byte, kHandshakeBytes> EncodeHandshake(const Handshake& handshake);
// kCorruption when truncated, not ours (magic), of an unknown type, or a hello with an
// impossible ring; kNotSupported for another version (version is still filled in on a
// reject, so a refused peer can say why).
Result<Handshake> DecodeHandshake(std::span<const std::byte> private_data);

// --- The sender's view of the peer's ring (and of its own staging area, which mirrors it).
// A slot is free again once the peer has returned its credit AND our write from the staging
// copy has completed locally. Chunks are laid out in ring order and never cross the end.
class SendWindow {
 public:
  struct Chunk {
    uint32_t first_slot = 0;
    uint32_t slots = 0;
    uint64_t offset = 0;  // first_slot * slot_bytes, in the ring and in staging
    uint32_t bytes = 0;
    bool last = false;  // the message's last chunk (kDataEnd)
  };

  // REQUIRES: CheckRingGeometry(slot_count, slot_bytes).ok(), 1 <= max_chunk_slots <= slot_count.
  SendWindow(uint32_t slot_count, uint32_t slot_bytes, uint32_t max_chunk_slots);

  // The next chunk for a message with `remaining` bytes left to send (0 for an empty
  // message), or nullopt when no slot is free. Uses whatever slots are free: a chunk may be
  // shorter than both the message and max_chunk_slots.
  std::optional<Chunk> Plan(uint64_t remaining) const;
  // Records that `chunk`, the latest Plan(), was posted.
  void Commit(const Chunk& chunk);
  // Our write of `slots` slots completed locally. kInternal if more than were posted.
  Status Completed(uint32_t slots);
  // The peer returned `slots` slots. kCorruption if more than we have in flight.
  Status Credited(uint32_t slots);

  uint32_t free_slots() const;
  uint32_t slot_count() const { return slot_count_; }
  uint32_t slot_bytes() const { return slot_bytes_; }
  uint64_t ring_bytes() const { return uint64_t{slot_count_} * slot_bytes_; }

 private:
  uint32_t slot_count_;
  uint32_t slot_bytes_;
  uint32_t max_chunk_slots_;
  uint32_t next_slot_ = 0;
  // Cumulative slot counts.
  uint64_t posted_ = 0;
  uint64_t completed_ = 0;
  uint64_t credited_ = 0;
};

// --- The receiver's view of its own ring.
class ReceiveRing {
 public:
  struct Arrival {
    uint64_t offset = 0;
    uint32_t bytes = 0;
    uint32_t slots = 0;
  };

  // REQUIRES: CheckRingGeometry(slot_count, slot_bytes).ok().
  ReceiveRing(uint32_t slot_count, uint32_t slot_bytes);

  // A chunk of `bytes` bytes has landed at the write position. kCorruption if it would cross
  // the ring's end or use slots the peer had no credit for.
  Result<Arrival> Arrive(uint32_t bytes);
  // The oldest `slots` arrived slots have been copied out. kInternal if more than arrived.
  Status Consume(uint32_t slots);
  // Slots to return now: everything consumed and not yet returned once that reaches a
  // quarter of the ring, or any amount when `force` (before blocking); else 0.
  uint32_t CreditsDue(bool force) const;
  // REQUIRES: slots <= consumed and not yet returned.
  void CreditsReturned(uint32_t slots);

  uint32_t slot_count() const { return slot_count_; }
  uint32_t slot_bytes() const { return slot_bytes_; }
  uint64_t ring_bytes() const { return uint64_t{slot_count_} * slot_bytes_; }

 private:
  uint32_t slot_count_;
  uint32_t slot_bytes_;
  uint32_t write_slot_ = 0;
  // Cumulative slot counts.
  uint64_t arrived_ = 0;
  uint64_t consumed_ = 0;
  uint64_t returned_ = 0;
};

}  // namespace rdma_protocol

// The Channel itself. Built only by DialRdma / a listener's Accept.
class RdmaChannel : public Channel {
 public:
  // The rdma_cm id, queue pair, completion queue and registered memory; rdma_channel.cc.
  struct Verbs;
  struct Geometry {
    uint32_t local_slot_count, local_slot_bytes;  // our ring
    uint32_t peer_slot_count, peer_slot_bytes;    // the peer's ring, as it told us
    uint64_t peer_ring_address;
    uint32_t peer_ring_rkey;
  };

  RdmaChannel(std::unique_ptr<Verbs> verbs, const Geometry& geometry, std::string peer,
              const ChannelOptions& options, const RdmaOptions& rdma);
  // Disconnects (the peer sees kBroken unless Close() came first) and frees everything.
  ~RdmaChannel() override;

  // Returns once every chunk is posted (the caller's buffers are free again); the bytes are
  // acknowledged later, and Close() waits for that. kInvalidArgument over max_message_bytes;
  // kBroken once the connection is gone. A deadline that expires after part of a message was
  // posted makes the channel unusable for sending (kFailedPrecondition from then on): the
  // rest of that message can never follow.
  Status Send(std::span<const MessagePart> parts, Deadline deadline) override;
  using Channel::Send;
  // A deadline mid-message keeps the part already received for the next call.
  Status Receive(std::vector<std::byte>& message, Deadline deadline) override;
  Status Close(Deadline deadline) override;
  // The peer's IP address and port, as seen by the rdma_cm.
  const std::string& peer_identity() const override { return peer_; }

 private:
  enum Role { kSender = 0, kReceiver = 1 };
  struct Pending {  // what the receive queue delivered, in order
    bool end_of_stream = false;
    bool last = false;
    rdma_protocol::ReceiveRing::Arrival arrival;
  };

  // Drains rdma_cm events and completions, reposts receives, wakes the other role if it
  // waits. Records fatal problems in broken_.
  void ProgressLocked();
  void HandleCompletionLocked(const ibv_wc& completion);
  void HandleReceiveLocked(const ibv_wc& completion);
  // Releases the lock and waits for a completion, an rdma_cm event, a wake-up from the other
  // role or the deadline. kDeadlineExceeded only when the deadline had passed already, so
  // the caller looks once more after the last wait.
  Status WaitLocked(std::unique_lock<std::mutex>& lock, Role role, Deadline deadline);
  void WakeLocked(Role role);
  void FailLocked(Status status);
  // Posts the RDMA WRITE WITH IMM of a committed chunk from staging.
  Status PostChunkLocked(const rdma_protocol::SendWindow::Chunk& chunk);
  // Posts a zero-byte SEND WITH IMM; REQUIRES sends_outstanding_ < send_queue_depth_.
  Status PostControlLocked(rdma_protocol::ImmKind kind, uint32_t value);
  // Returns credits now if due (see ReceiveRing::CreditsDue) and the send queue has room.
  void ReturnCreditsLocked(bool force);
  // The status for a receiver that found nothing more to deliver on a dead connection.
  Status DeadConnectionLocked(bool mid_message) const;

  // Constant after construction.
  const std::unique_ptr<Verbs> verbs_;
  const std::string peer_;
  const ChannelOptions options_;
  const uint32_t send_queue_depth_;
  const uint64_t peer_ring_address_;
  const uint32_t peer_ring_rkey_;

  std::mutex mu_;
  // Protected by mu_.
  rdma_protocol::SendWindow window_;
  rdma_protocol::ReceiveRing ring_;
  std::deque<Pending> pending_;
  uint32_t sends_outstanding_ = 0;     // posted (or reserved by Send), not yet completed
  uint32_t receives_outstanding_;      // posted receives, not yet completed
  bool waiting_[2] = {false, false};
  bool disconnected_ = false;       // RDMA_CM_EVENT_DISCONNECTED seen
  bool end_of_stream_sent_ = false;
  bool end_of_stream_acked_ = false;  // its completion: the peer's adapter has everything we sent
  Status broken_;                   // first fatal error; sticky
  Status send_refused_;             // send side unusable (a Send timed out mid-message)

  // Used only by the receiving thread.
  std::vector<std::byte> partial_;  // a message begun by a Receive that timed out
  bool resume_partial_ = false;
  bool closed_by_peer_ = false;
};

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_RDMA_CHANNEL_H_
