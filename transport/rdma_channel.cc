#include "transport/rdma_channel.h"

#include <endian.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "transport/socket_address.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace understudy::transport {

// ---------------------------------------------------------------------------------------
// The pure protocol parts.

namespace rdma_protocol {

Status CheckRingGeometry(uint32_t slot_count, uint32_t slot_bytes) {
  if (slot_bytes < kMinSlotBytes || slot_bytes > kMaxSlotBytes) {
    return Status::InvalidArgument("slot_bytes " + std::to_string(slot_bytes) + " is outside [" +
                                   std::to_string(kMinSlotBytes) + ", " + std::to_string(kMaxSlotBytes) + "]");
  }
  if (slot_count < kMinSlotCount || slot_count > kMaxSlotCount) {
    return Status::InvalidArgument("slot_count " + std::to_string(slot_count) + " is outside [" +
                                   std::to_string(kMinSlotCount) + ", " + std::to_string(kMaxSlotCount) + "]");
  }
  uint64_t ring = uint64_t{slot_count} * slot_bytes;
  if (ring > kMaxRingBytes) {
    return Status::InvalidArgument("a ring of slot_count " + std::to_string(slot_count) + " x slot_bytes " +
                                   std::to_string(slot_bytes) + " = " + std::to_string(ring) + " bytes exceeds " +
                                   std::to_string(kMaxRingBytes));
  }
  return Status::Ok();
}

uint32_t SlotsFor(uint64_t bytes, uint32_t slot_bytes) {
  if (bytes == 0) return 1;
  return static_cast<uint32_t>((bytes + slot_bytes - 1) / slot_bytes);
}

uint32_t EncodeImm(ImmKind kind, uint32_t value) {
  return (static_cast<uint32_t>(kind) << 29) | (value & kImmValueMask);
}

Result<Imm> DecodeImm(uint32_t imm) {
  uint32_t kind = imm >> 29;
  if (kind < static_cast<uint32_t>(ImmKind::kData) || kind > static_cast<uint32_t>(ImmKind::kEndOfStream)) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", imm);
    return Status::Corruption("immediate data " + std::string(hex) + " has unknown kind " + std::to_string(kind));
  }
  return Imm{static_cast<ImmKind>(kind), imm & kImmValueMask};
}

std::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kNone: return "no reason";
    case RejectReason::kMalformedHello: return "malformed hello";
    case RejectReason::kUnsupportedVersion: return "unsupported protocol version";
    case RejectReason::kNoResources: return "listener out of RDMA resources";
  }
  return "unknown reason";
}

std::array<std::byte, kHandshakeBytes> EncodeHandshake(const Handshake& handshake) {
  std::array<std::byte, kHandshakeBytes> bytes{};
  StoreLittleEndian<uint32_t>(&bytes[0], kHandshakeMagic);
  StoreLittleEndian<uint16_t>(&bytes[4], handshake.version);
  StoreLittleEndian<uint16_t>(&bytes[6], static_cast<uint16_t>(handshake.type));
  StoreLittleEndian<uint64_t>(&bytes[8], handshake.ring_address);
  StoreLittleEndian<uint32_t>(&bytes[16], handshake.ring_rkey);
  StoreLittleEndian<uint32_t>(&bytes[20], handshake.slot_count);
  StoreLittleEndian<uint32_t>(&bytes[24], handshake.slot_bytes);
  StoreLittleEndian<uint32_t>(&bytes[28], static_cast<uint32_t>(handshake.reject_reason));
  return bytes;
}

Result<Handshake> DecodeHandshake(std::span<const std::byte> data) {
  if (data.size() < kHandshakeBytes) {
    return Status::Corruption("RDMA handshake of " + std::to_string(data.size()) + " bytes is shorter than " +
                              std::to_string(kHandshakeBytes));
  }
  if (LoadLittleEndian<uint32_t>(&data[0]) != kHandshakeMagic) {
    return Status::Corruption("RDMA handshake has the wrong magic: the peer is not an Understudy agent");
  }
  Handshake handshake;
  handshake.version = LoadLittleEndian<uint16_t>(&data[4]);
  if (handshake.version != kHandshakeVersion) {
    return Status::NotSupported("RDMA handshake version " + std::to_string(handshake.version) + ", expected " +
                                std::to_string(kHandshakeVersion));
  }
  uint16_t type = LoadLittleEndian<uint16_t>(&data[6]);
  if (type != static_cast<uint16_t>(HandshakeType::kHello) && type != static_cast<uint16_t>(HandshakeType::kReject)) {
    return Status::Corruption("RDMA handshake has unknown type " + std::to_string(type));
  }
  handshake.type = static_cast<HandshakeType>(type);
  handshake.ring_address = LoadLittleEndian<uint64_t>(&data[8]);
  handshake.ring_rkey = LoadLittleEndian<uint32_t>(&data[16]);
  handshake.slot_count = LoadLittleEndian<uint32_t>(&data[20]);
  handshake.slot_bytes = LoadLittleEndian<uint32_t>(&data[24]);
  handshake.reject_reason = static_cast<RejectReason>(LoadLittleEndian<uint32_t>(&data[28]));
  if (handshake.type == HandshakeType::kReject) return handshake;
  if (handshake.reject_reason != RejectReason::kNone) {
    return Status::Corruption("RDMA hello carries reject reason " +
                              std::to_string(static_cast<uint32_t>(handshake.reject_reason)));
  }
  Status geometry = CheckRingGeometry(handshake.slot_count, handshake.slot_bytes);
  if (!geometry.ok()) return Status::Corruption("RDMA hello announces an impossible ring: " + geometry.message());
  if (handshake.ring_address == 0) return Status::Corruption("RDMA hello announces a ring at address 0");
  return handshake;
}

SendWindow::SendWindow(uint32_t slot_count, uint32_t slot_bytes, uint32_t max_chunk_slots)
    : slot_count_(slot_count), slot_bytes_(slot_bytes), max_chunk_slots_(std::clamp(max_chunk_slots, 1u, slot_count)) {}

uint32_t SendWindow::free_slots() const {
  uint64_t released = std::min(completed_, credited_);
  return static_cast<uint32_t>(slot_count_ - (posted_ - released));
}

std::optional<SendWindow::Chunk> SendWindow::Plan(uint64_t remaining) const {
  uint32_t free = free_slots();
  if (free == 0) return std::nullopt;
  uint64_t needed = SlotsFor(remaining, slot_bytes_);
  uint32_t to_end = slot_count_ - next_slot_;
  Chunk chunk;
  chunk.slots = static_cast<uint32_t>(std::min<uint64_t>({needed, free, to_end, max_chunk_slots_}));
  chunk.first_slot = next_slot_;
  chunk.offset = uint64_t{next_slot_} * slot_bytes_;
  chunk.bytes = static_cast<uint32_t>(std::min<uint64_t>(remaining, uint64_t{chunk.slots} * slot_bytes_));
  chunk.last = chunk.bytes == remaining;
  return chunk;
}

void SendWindow::Commit(const Chunk& chunk) {
  next_slot_ = (next_slot_ + chunk.slots) % slot_count_;
  posted_ += chunk.slots;
}

Status SendWindow::Completed(uint32_t slots) {
  if (completed_ + slots > posted_) {
    return Status::Internal("completion for " + std::to_string(slots) + " slots, but only " +
                            std::to_string(posted_ - completed_) + " are awaiting completion");
  }
  completed_ += slots;
  return Status::Ok();
}

Status SendWindow::Credited(uint32_t slots) {
  if (credited_ + slots > posted_) {
    return Status::Corruption("peer returned " + std::to_string(slots) + " slots of credit, but only " +
                              std::to_string(posted_ - credited_) + " are in flight");
  }
  credited_ += slots;
  return Status::Ok();
}

ReceiveRing::ReceiveRing(uint32_t slot_count, uint32_t slot_bytes) : slot_count_(slot_count), slot_bytes_(slot_bytes) {}

Result<ReceiveRing::Arrival> ReceiveRing::Arrive(uint32_t bytes) {
  uint32_t slots = SlotsFor(bytes, slot_bytes_);
  if (slots > slot_count_ - write_slot_) {
    return Status::Corruption("chunk of " + std::to_string(bytes) + " bytes at slot " + std::to_string(write_slot_) +
                              " crosses the end of a " + std::to_string(slot_count_) + "-slot ring");
  }
  if (arrived_ - returned_ + slots > slot_count_) {
    return Status::Corruption("peer wrote " + std::to_string(slots) + " slots with only " +
                              std::to_string(slot_count_ - (arrived_ - returned_)) + " slots of credit");
  }
  Arrival arrival;
  arrival.offset = uint64_t{write_slot_} * slot_bytes_;
  arrival.bytes = bytes;
  arrival.slots = slots;
  write_slot_ = (write_slot_ + slots) % slot_count_;
  arrived_ += slots;
  return arrival;
}

Status ReceiveRing::Consume(uint32_t slots) {
  if (consumed_ + slots > arrived_) {
    return Status::Internal("consumed " + std::to_string(slots) + " slots, but only " +
                            std::to_string(arrived_ - consumed_) + " have arrived");
  }
  consumed_ += slots;
  return Status::Ok();
}

uint32_t ReceiveRing::CreditsDue(bool force) const {
  uint64_t unreturned = consumed_ - returned_;
  if (unreturned == 0) return 0;
  uint64_t threshold = std::max<uint64_t>(1, slot_count_ / 4);
  if (!force && unreturned < threshold) return 0;
  return static_cast<uint32_t>(unreturned);
}

void ReceiveRing::CreditsReturned(uint32_t slots) { returned_ += std::min<uint64_t>(slots, consumed_ - returned_); }

}  // namespace rdma_protocol

using rdma_protocol::EncodeImm;
using rdma_protocol::Handshake;
using rdma_protocol::HandshakeType;
using rdma_protocol::ImmKind;
using rdma_protocol::RejectReason;

// ---------------------------------------------------------------------------------------
// Options and availability.

Status ValidateRdmaOptions(const RdmaOptions& options) {
  Status geometry = rdma_protocol::CheckRingGeometry(options.slot_count, options.slot_bytes);
  if (!geometry.ok()) return geometry.WithContext("RDMA options");
  if (options.max_chunk_bytes == 0) return Status::InvalidArgument("RDMA options: max_chunk_bytes must be positive");
  if (options.send_queue_depth < 4 || options.send_queue_depth > 16384) {
    return Status::InvalidArgument("RDMA options: send_queue_depth " + std::to_string(options.send_queue_depth) +
                                   " is outside [4, 16384]");
  }
  return Status::Ok();
}

namespace {

// Work request ids: what was posted (top byte) and, for chunks, how many slots it used.
enum WorkKind : uint64_t { kWorkChunk = 1, kWorkCredit = 2, kWorkEndOfStream = 3, kWorkReceive = 4 };
uint64_t WorkId(WorkKind kind, uint32_t slots = 0) { return (uint64_t{kind} << 56) | slots; }
WorkKind KindOf(uint64_t work_id) { return static_cast<WorkKind>(work_id >> 56); }
uint32_t SlotsOf(uint64_t work_id) { return static_cast<uint32_t>(work_id & 0xffffffffu); }

// Extra receive queue entries beyond the data and credit bound: the end-of-stream marker and
// one spare.
constexpr uint32_t kControlReceives = 2;
// A reconnecting dialer waits this long between attempts while nobody listens.
constexpr auto kDialRetryPause = std::chrono::milliseconds(20);

void InitVerbsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Agents fork (to start QEMU) while memory is registered. On kernels with fork-safe
    // pinning this is a no-op; on older ones it marks registered pages MADV_DONTFORK so a
    // child's copy-on-write cannot move pages under the adapter. Must precede registration.
    int error = ::ibv_fork_init();
    if (error != 0) Log("transport", std::string("ibv_fork_init failed: ") + std::strerror(error));
  });
}

// Checks shared by DialRdma and ListenRdma, cheapest first, so that bad arguments are
// reported as such even on a host without RDMA.
Status CheckArguments(const ChannelOptions& options, const RdmaOptions& rdma, const std::string& where) {
  if (!options.insecure) {
    return Status::InvalidArgument("'rdma://" + where +
                                   "' is RDMA (unencrypted, unauthenticated); set insecure: true to allow it");
  }
  UNDERSTUDY_RETURN_IF_ERROR(ValidateRdmaOptions(rdma));
  return RdmaAvailable();
}

int TimeoutMillis(Deadline deadline) { return std::max(1, deadline.PollTimeoutMillis()); }

// An rdma_cm event, copied so that it can be acknowledged at once (its private data lives
// only until the acknowledgement, and rdma_destroy_id/rdma_migrate_id wait for acks).
struct CmEvent {
  rdma_cm_event_type type = RDMA_CM_EVENT_ADDR_ERROR;
  int status = 0;
  rdma_cm_id* id = nullptr;
  std::vector<std::byte> private_data;
  uint8_t responder_resources = 0;
  uint8_t initiator_depth = 0;
};

std::string EventName(rdma_cm_event_type type) { return ::rdma_event_str(type); }

// Takes the next event off `channel` (its fd is non-blocking), waiting until the deadline.
Result<CmEvent> NextCmEvent(rdma_event_channel* channel, Deadline deadline) {
  for (;;) {
    rdma_cm_event* event = nullptr;
    if (::rdma_get_cm_event(channel, &event) == 0) {
      CmEvent copy;
      copy.type = event->event;
      copy.status = event->status;
      copy.id = event->id;
      const rdma_conn_param& conn = event->param.conn;
      if (conn.private_data != nullptr && conn.private_data_len > 0) {
        const auto* data = static_cast<const std::byte*>(conn.private_data);
        copy.private_data.assign(data, data + conn.private_data_len);
      }
      copy.responder_resources = conn.responder_resources;
      copy.initiator_depth = conn.initiator_depth;
      ::rdma_ack_cm_event(event);
      return copy;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Status::FromErrno("rdma_get_cm_event", errno);
    UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(channel->fd, /*for_write=*/false, deadline));
  }
}

Result<rdma_event_channel*> CreateEventChannel() {
  rdma_event_channel* channel = ::rdma_create_event_channel();
  if (channel == nullptr) return Status::FromErrno("rdma_create_event_channel", errno);
  Status nonblocking = SetNonBlocking(channel->fd);
  if (!nonblocking.ok()) {
    ::rdma_destroy_event_channel(channel);
    return nonblocking;
  }
  return channel;
}

// Anonymous, page-aligned memory for a ring or staging area.
class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(MappedRegion&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedRegion& operator=(MappedRegion&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~MappedRegion() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }

  static Result<MappedRegion> Map(size_t size) {
    void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) return Status::FromErrno("mmap of " + std::to_string(size) + " bytes", errno);
    MappedRegion region;
    region.data_ = static_cast<std::byte*>(data);
    region.size_ = size;
    return region;
  }

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

Status PostReceive(ibv_qp* qp) {
  ibv_recv_wr request{};
  request.wr_id = WorkId(kWorkReceive);
  request.sg_list = nullptr;  // chunks land in the ring by RDMA WRITE; control messages are empty
  request.num_sge = 0;
  ibv_recv_wr* bad = nullptr;
  int error = ::ibv_post_recv(qp, &request, &bad);
  if (error != 0) return Status::FromErrno("ibv_post_recv", error);
  return Status::Ok();
}

}  // namespace

Status RdmaAvailable() {
  InitVerbsOnce();
  int count = 0;
  errno = 0;
  ibv_device** devices = ::ibv_get_device_list(&count);
  if (devices == nullptr) {
    int error = errno;
    if (error == ENOSYS) {
      return Status::FailedPrecondition(
          "the kernel offers no RDMA support (ibv_get_device_list: " + std::string(std::strerror(error)) +
          "); load ib_uverbs and a driver, e.g. soft-RoCE: modprobe rdma_rxe && rdma link add rxe0 type rxe netdev "
          "<iface> (see transport/RDMA.md)");
    }
    return Status::FailedPrecondition("ibv_get_device_list failed: " + std::string(std::strerror(error)) +
                                      " (see transport/RDMA.md)");
  }
  ::ibv_free_device_list(devices);
  if (count == 0) {
    return Status::FailedPrecondition(
        "ibv_get_device_list found no RDMA device; for soft-RoCE: modprobe rdma_rxe && rdma link add rxe0 type rxe "
        "netdev <iface> (see transport/RDMA.md)");
  }
  rdma_event_channel* probe = ::rdma_create_event_channel();
  if (probe == nullptr) {
    return Status::FailedPrecondition(std::to_string(count) + " RDMA device(s) but no rdma_cm (" +
                                      std::strerror(errno) +
                                      "): load rdma_ucm for /dev/infiniband/rdma_cm (see transport/RDMA.md)");
  }
  ::rdma_destroy_event_channel(probe);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Verbs resources of one connection.

struct RdmaChannel::Verbs {
  rdma_event_channel* events = nullptr;  // this connection's own rdma_cm event channel
  rdma_cm_id* id = nullptr;
  ibv_pd* pd = nullptr;
  ibv_comp_channel* completions = nullptr;
  ibv_cq* cq = nullptr;
  bool has_qp = false;
  bool connected = false;
  uint32_t initial_receives = 0;  // receives posted at set-up
  MappedRegion ring;     // peers write here (IBV_ACCESS_REMOTE_WRITE)
  MappedRegion staging;  // mirrors the peer's ring; the source of our RDMA WRITEs
  ibv_mr* ring_mr = nullptr;
  ibv_mr* staging_mr = nullptr;
  UniqueFd wake[2];  // eventfds: one thread wakes the other (indexed by Role)

  Verbs() = default;
  Verbs(const Verbs&) = delete;
  Verbs& operator=(const Verbs&) = delete;

  // Tears down in dependency order: QP before its CQ and MRs, MRs before their PD and
  // memory, everything before the rdma_cm id, the id before its event channel.
  ~Verbs() {
    if (connected) ::rdma_disconnect(id);
    if (has_qp) ::rdma_destroy_qp(id);
    if (staging_mr != nullptr) ::ibv_dereg_mr(staging_mr);
    if (ring_mr != nullptr) ::ibv_dereg_mr(ring_mr);
    if (cq != nullptr) ::ibv_destroy_cq(cq);
    if (completions != nullptr) ::ibv_destroy_comp_channel(completions);
    if (pd != nullptr) ::ibv_dealloc_pd(pd);
    if (id != nullptr) ::rdma_destroy_id(id);
    if (events != nullptr) ::rdma_destroy_event_channel(events);
  }

  // Creates the PD, completion channel, CQ and RC queue pair on `id`'s device, registers a
  // ring of slot_count x slot_bytes, posts `receive_depth` receives and arms the CQ.
  Status SetUp(uint32_t slot_count, uint32_t slot_bytes, uint32_t receive_depth, uint32_t send_depth) {
    if (id->verbs == nullptr) return Status::Internal("rdma_cm id has no device");
    ibv_device_attr device{};
    if (int error = ::ibv_query_device(id->verbs, &device); error != 0) {
      return Status::FromErrno("ibv_query_device", error);
    }
    const std::string device_name = ::ibv_get_device_name(id->verbs->device);
    if (id->verbs->device->transport_type == IBV_TRANSPORT_IWARP) {
      return Status::FailedPrecondition(device_name +
                                        " is an iWARP device; the RDMA channel needs RDMA WRITE WITH IMMEDIATE "
                                        "(InfiniBand or RoCE)");
    }
    uint64_t cq_depth = uint64_t{receive_depth} + send_depth;
    const auto max_queue = static_cast<uint32_t>(device.max_qp_wr);
    if (receive_depth > max_queue || send_depth > max_queue) {
      return Status::FailedPrecondition("a receive queue of " + std::to_string(receive_depth) +
                                        " entries (from slot_count) or a send queue of " +
                                        std::to_string(send_depth) + " exceeds " + device_name + "'s " +
                                        std::to_string(device.max_qp_wr) + "; lower slot_count or send_queue_depth");
    }
    if (cq_depth > static_cast<uint64_t>(device.max_cqe)) {
      return Status::FailedPrecondition("a completion queue of " + std::to_string(cq_depth) + " entries exceeds " +
                                        device_name + "'s " + std::to_string(device.max_cqe));
    }
    pd = ::ibv_alloc_pd(id->verbs);
    if (pd == nullptr) return Status::FromErrno("ibv_alloc_pd on " + device_name, errno);
    completions = ::ibv_create_comp_channel(id->verbs);
    if (completions == nullptr) return Status::FromErrno("ibv_create_comp_channel", errno);
    UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(completions->fd));
    cq = ::ibv_create_cq(id->verbs, static_cast<int>(cq_depth), nullptr, completions, 0);
    if (cq == nullptr) return Status::FromErrno("ibv_create_cq", errno);

    ibv_qp_init_attr attributes{};
    attributes.send_cq = cq;
    attributes.recv_cq = cq;
    attributes.qp_type = IBV_QPT_RC;
    attributes.sq_sig_all = 1;  // every send completes visibly: that is how slots and the SQ are released
    attributes.cap.max_send_wr = send_depth;
    attributes.cap.max_recv_wr = receive_depth;
    attributes.cap.max_send_sge = 1;
    attributes.cap.max_recv_sge = 1;
    if (::rdma_create_qp(id, pd, &attributes) != 0) return Status::FromErrno("rdma_create_qp", errno);
    has_qp = true;

    uint64_t ring_bytes = uint64_t{slot_count} * slot_bytes;
    UNDERSTUDY_ASSIGN_OR_RETURN(ring, MappedRegion::Map(ring_bytes));
    ring_mr = ::ibv_reg_mr(pd, ring.data(), ring.size(), IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (ring_mr == nullptr) return RegistrationFailure("receive ring", ring.size(), errno);
    for (uint32_t i = 0; i < receive_depth; ++i) UNDERSTUDY_RETURN_IF_ERROR(PostReceive(id->qp));
    initial_receives = receive_depth;
    if (int error = ::ibv_req_notify_cq(cq, 0); error != 0) return Status::FromErrno("ibv_req_notify_cq", error);
    for (UniqueFd& fd : wake) {
      fd = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      if (!fd.valid()) return Status::FromErrno("eventfd", errno);
    }
    return Status::Ok();
  }

  // Registers the staging area, once the peer's ring size is known. Local access only: the
  // adapter reads it to execute our RDMA WRITEs.
  Status RegisterStaging(uint64_t bytes) {
    UNDERSTUDY_ASSIGN_OR_RETURN(staging, MappedRegion::Map(bytes));
    staging_mr = ::ibv_reg_mr(pd, staging.data(), staging.size(), 0);
    if (staging_mr == nullptr) return RegistrationFailure("send staging area", staging.size(), errno);
    return Status::Ok();
  }

  static Status RegistrationFailure(const std::string& what, size_t size, int error) {
    std::string hint = error == ENOMEM || error == EPERM
                           ? " (registered memory is pinned: raise RLIMIT_MEMLOCK, e.g. ulimit -l unlimited)"
                           : "";
    return Status::FromErrno("ibv_reg_mr of the " + std::to_string(size) + "-byte " + what + hint, error);
  }
};

// ---------------------------------------------------------------------------------------
// RdmaChannel.

namespace {

uint32_t ChunkSlots(const RdmaOptions& rdma, uint32_t peer_slot_bytes, uint32_t peer_slot_count) {
  uint64_t slots = rdma.max_chunk_bytes / peer_slot_bytes;
  return static_cast<uint32_t>(std::clamp<uint64_t>(slots, 1, peer_slot_count));
}

// Copies `count` bytes of the scatter-gather message at the cursor (part, offset) to `to`.
void CopyFromParts(std::span<const MessagePart> parts, size_t& part, size_t& offset, std::byte* to, size_t count) {
  while (count > 0) {
    const MessagePart& source = parts[part];
    size_t take = std::min(count, source.size() - offset);
    if (take > 0) std::memcpy(to, source.data() + offset, take);
    to += take;
    count -= take;
    offset += take;
    if (offset == source.size()) {
      ++part;
      offset = 0;
    }
  }
}

}  // namespace

RdmaChannel::RdmaChannel(std::unique_ptr<Verbs> verbs, const Geometry& geometry, std::string peer,
                         const ChannelOptions& options, const RdmaOptions& rdma)
    : verbs_(std::move(verbs)),
      peer_(std::move(peer)),
      options_(options),
      send_queue_depth_(rdma.send_queue_depth),
      peer_ring_address_(geometry.peer_ring_address),
      peer_ring_rkey_(geometry.peer_ring_rkey),
      window_(geometry.peer_slot_count, geometry.peer_slot_bytes,
              ChunkSlots(rdma, geometry.peer_slot_bytes, geometry.peer_slot_count)),
      ring_(geometry.local_slot_count, geometry.local_slot_bytes),
      receives_outstanding_(verbs_->initial_receives) {}

RdmaChannel::~RdmaChannel() = default;

void RdmaChannel::FailLocked(Status status) {
  if (broken_.ok()) broken_ = std::move(status);
  for (int role : {kSender, kReceiver}) {
    if (waiting_[role]) WakeLocked(static_cast<Role>(role));
  }
}

void RdmaChannel::WakeLocked(Role role) {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(verbs_->wake[role].get(), &one, sizeof(one));
}

void RdmaChannel::ProgressLocked() {
  Verbs& verbs = *verbs_;
  bool progressed = false;

  // The connection's rdma_cm events: a disconnect, or the device going away.
  for (;;) {
    rdma_cm_event* event = nullptr;
    if (::rdma_get_cm_event(verbs.events, &event) != 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        FailLocked(Status::FromErrno("rdma_get_cm_event on the connection to " + peer_, errno));
      }
      break;
    }
    rdma_cm_event_type type = event->event;
    ::rdma_ack_cm_event(event);
    progressed = true;
    if (type == RDMA_CM_EVENT_DISCONNECTED && !disconnected_) {
      disconnected_ = true;
      // Our half of the disconnect answers the peer and moves the QP to the error state,
      // which flushes every posted request: completions that arrived before the disconnect
      // come out of the CQ first, then the flushes. Receive relies on that order.
      ::rdma_disconnect(verbs.id);
      verbs.connected = false;
      ibv_qp_attr error_state{};
      error_state.qp_state = IBV_QPS_ERR;
      ::ibv_modify_qp(verbs.id->qp, &error_state, IBV_QP_STATE);
    } else if (type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
      FailLocked(Status::Broken("the RDMA device under the connection to " + peer_ + " was removed"));
    }
    // ESTABLISHED repeats, TIMEWAIT_EXIT and ADDR_CHANGE need nothing.
  }

  // Completion channel: consume a pending event (the fd is non-blocking), acknowledge it at
  // once (ibv_destroy_cq waits for acknowledgements), re-arm, then empty the CQ. Completions
  // that arrive after re-arming raise a new event, so none is missed.
  ibv_cq* event_cq = nullptr;
  void* event_context = nullptr;
  if (::ibv_get_cq_event(verbs.completions, &event_cq, &event_context) == 0) {
    ::ibv_ack_cq_events(event_cq, 1);
    if (int error = ::ibv_req_notify_cq(verbs.cq, 0); error != 0) {
      FailLocked(Status::FromErrno("ibv_req_notify_cq", error));
    }
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    FailLocked(Status::FromErrno("ibv_get_cq_event", errno));
  }

  ibv_wc completions[32];
  for (;;) {
    int count = ::ibv_poll_cq(verbs.cq, 32, completions);
    if (count < 0) {
      FailLocked(Status::IOError("ibv_poll_cq failed on the connection to " + peer_));
      break;
    }
    if (count == 0) break;
    progressed = true;
    for (int i = 0; i < count; ++i) HandleCompletionLocked(completions[i]);
  }

  if (progressed) {
    for (int role : {kSender, kReceiver}) {
      if (waiting_[role]) WakeLocked(static_cast<Role>(role));
    }
  }
}

void RdmaChannel::HandleCompletionLocked(const ibv_wc& completion) {
  WorkKind kind = KindOf(completion.wr_id);
  if (kind == kWorkReceive) {
    if (receives_outstanding_ > 0) --receives_outstanding_;
  } else if (sends_outstanding_ > 0) {
    --sends_outstanding_;
  }
  if (completion.status != IBV_WC_SUCCESS) {
    // After a disconnect (or an earlier failure) the QP is in the error state and flushes
    // every posted request: expected, not news.
    if (completion.status == IBV_WC_WR_FLUSH_ERR && (disconnected_ || !broken_.ok())) return;
    FailLocked(Status::Broken("connection to " + peer_ + " failed: " + ::ibv_wc_status_str(completion.status) +
                              " (vendor error " + std::to_string(completion.vendor_err) + ")"));
    return;
  }
  switch (kind) {
    case kWorkChunk: {
      Status status = window_.Completed(SlotsOf(completion.wr_id));
      if (!status.ok()) FailLocked(status);
      return;
    }
    case kWorkCredit:
      return;
    case kWorkEndOfStream:
      end_of_stream_acked_ = true;
      return;
    case kWorkReceive:
      HandleReceiveLocked(completion);
      if (!disconnected_ && broken_.ok()) {
        Status status = PostReceive(verbs_->id->qp);
        if (status.ok()) {
          ++receives_outstanding_;
        } else {
          FailLocked(status);
        }
      }
      return;
  }
  FailLocked(Status::Internal("completion with unknown work request id " + std::to_string(completion.wr_id)));
}

void RdmaChannel::HandleReceiveLocked(const ibv_wc& completion) {
  auto corrupt = [&](const std::string& what) {
    FailLocked(Status::Corruption("from " + peer_ + ": " + what + "; the connection is unusable"));
  };
  if ((completion.wc_flags & IBV_WC_WITH_IMM) == 0) return corrupt("a message without immediate data");
  Result<rdma_protocol::Imm> imm = rdma_protocol::DecodeImm(be32toh(completion.imm_data));
  if (!imm.ok()) return corrupt(imm.status().message());
  if (completion.opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
    if (imm->kind != ImmKind::kData && imm->kind != ImmKind::kDataEnd) {
      return corrupt("an RDMA write announced as control message kind " +
                     std::to_string(static_cast<uint32_t>(imm->kind)));
    }
    Result<rdma_protocol::ReceiveRing::Arrival> arrival = ring_.Arrive(imm->value);
    if (!arrival.ok()) return corrupt(arrival.status().message());
    Pending pending;
    pending.last = imm->kind == ImmKind::kDataEnd;
    pending.arrival = *arrival;
    pending_.push_back(pending);
    return;
  }
  if (completion.opcode != IBV_WC_RECV) {
    return corrupt("a receive completion with opcode " + std::to_string(completion.opcode));
  }
  if (completion.byte_len != 0) {
    return corrupt("a control message with " + std::to_string(completion.byte_len) + " bytes of payload");
  }
  if (imm->kind == ImmKind::kCredit) {
    Status status = window_.Credited(imm->value);
    if (!status.ok()) corrupt(status.message());
    return;
  }
  if (imm->kind == ImmKind::kEndOfStream) {
    Pending pending;
    pending.end_of_stream = true;
    pending_.push_back(pending);
    return;
  }
  corrupt("a data chunk sent as a SEND instead of an RDMA write");
}

Status RdmaChannel::WaitLocked(std::unique_lock<std::mutex>& lock, Role role, Deadline deadline) {
  if (deadline.Expired()) return Status::DeadlineExceeded("timed out");
  Verbs& verbs = *verbs_;
  waiting_[role] = true;
  lock.unlock();
  pollfd fds[3] = {};
  fds[0].fd = verbs.completions->fd;
  fds[1].fd = verbs.events->fd;
  fds[2].fd = verbs.wake[role].get();
  for (pollfd& fd : fds) fd.events = POLLIN;
  int ready = ::poll(fds, 3, deadline.PollTimeoutMillis());
  int poll_error = errno;
  uint64_t wakeups = 0;
  [[maybe_unused]] ssize_t ignored = ::read(verbs.wake[role].get(), &wakeups, sizeof(wakeups));
  lock.lock();
  waiting_[role] = false;
  if (ready < 0 && poll_error != EINTR) return Status::FromErrno("poll", poll_error);
  return Status::Ok();
}

Status RdmaChannel::PostChunkLocked(const rdma_protocol::SendWindow::Chunk& chunk) {
  ibv_sge gather{};
  gather.addr = reinterpret_cast<uintptr_t>(verbs_->staging.data() + chunk.offset);
  gather.length = chunk.bytes;
  gather.lkey = verbs_->staging_mr->lkey;
  ibv_send_wr request{};
  request.wr_id = WorkId(kWorkChunk, chunk.slots);
  request.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
  request.send_flags = IBV_SEND_SIGNALED;
  request.sg_list = chunk.bytes > 0 ? &gather : nullptr;
  request.num_sge = chunk.bytes > 0 ? 1 : 0;
  request.imm_data = htobe32(EncodeImm(chunk.last ? ImmKind::kDataEnd : ImmKind::kData, chunk.bytes));
  request.wr.rdma.remote_addr = peer_ring_address_ + chunk.offset;
  request.wr.rdma.rkey = peer_ring_rkey_;
  ibv_send_wr* bad = nullptr;
  if (int error = ::ibv_post_send(verbs_->id->qp, &request, &bad); error != 0) {
    return Status::FromErrno("posting an RDMA write to " + peer_, error);
  }
  return Status::Ok();
}

Status RdmaChannel::PostControlLocked(ImmKind kind, uint32_t value) {
  ibv_send_wr request{};
  request.wr_id = WorkId(kind == ImmKind::kEndOfStream ? kWorkEndOfStream : kWorkCredit);
  request.opcode = IBV_WR_SEND_WITH_IMM;
  request.send_flags = IBV_SEND_SIGNALED;
  request.sg_list = nullptr;
  request.num_sge = 0;
  request.imm_data = htobe32(EncodeImm(kind, value));
  ibv_send_wr* bad = nullptr;
  if (int error = ::ibv_post_send(verbs_->id->qp, &request, &bad); error != 0) {
    return Status::FromErrno("posting a control message to " + peer_, error);
  }
  ++sends_outstanding_;
  return Status::Ok();
}

void RdmaChannel::ReturnCreditsLocked(bool force) {
  uint32_t due = ring_.CreditsDue(force);
  if (due == 0 || disconnected_ || !broken_.ok() || sends_outstanding_ >= send_queue_depth_) return;
  Status status = PostControlLocked(ImmKind::kCredit, due);
  if (!status.ok()) return FailLocked(status);
  ring_.CreditsReturned(due);
}

Status RdmaChannel::Send(std::span<const MessagePart> parts, Deadline deadline) {
  uint64_t total = 0;
  for (const MessagePart& part : parts) total += part.size();
  if (total > options_.max_message_bytes) {
    return Status::InvalidArgument("message of " + std::to_string(total) + " bytes exceeds the channel's limit of " +
                                   std::to_string(options_.max_message_bytes));
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!send_refused_.ok()) return send_refused_;
  if (end_of_stream_sent_) return Status::FailedPrecondition("Send after Close on the channel to " + peer_);
  size_t part = 0;
  size_t offset = 0;
  uint64_t remaining = total;
  bool posted_any = false;
  for (;;) {
    ProgressLocked();
    if (!broken_.ok()) return broken_;
    if (disconnected_) return Status::Broken("connection to " + peer_ + " is gone");
    // One send queue entry stays free for credit and end-of-stream messages.
    std::optional<rdma_protocol::SendWindow::Chunk> chunk;
    if (sends_outstanding_ + 1 < send_queue_depth_) chunk = window_.Plan(remaining);
    if (!chunk) {
      Status waited = WaitLocked(lock, kSender, deadline);
      if (waited.ok()) continue;
      if (posted_any) {
        send_refused_ = Status::FailedPrecondition("an earlier Send to " + peer_ +
                                                   " timed out mid-message; the channel cannot send any more");
        return waited.WithContext("sending to " + peer_ + " (" + std::to_string(total - remaining) + " of " +
                                  std::to_string(total) + " bytes posted; the channel can no longer send)");
      }
      return waited.WithContext("sending to " + peer_ + " (waiting for ring credit)");
    }
    // Reserve the slots and the send queue entry, then copy without holding the lock: the
    // reserved staging slots are ours alone until the write completes.
    window_.Commit(*chunk);
    ++sends_outstanding_;
    lock.unlock();
    CopyFromParts(parts, part, offset, verbs_->staging.data() + chunk->offset, chunk->bytes);
    lock.lock();
    Status posted = PostChunkLocked(*chunk);
    if (!posted.ok()) {
      FailLocked(posted);
      return broken_;
    }
    posted_any = true;
    remaining -= chunk->bytes;
    if (chunk->last) return Status::Ok();
  }
}

Status RdmaChannel::DeadConnectionLocked(bool mid_message) const {
  if (!broken_.ok()) return broken_;
  return Status::Broken("connection from " + peer_ + (mid_message ? " ended mid-message" : " ended without a goodbye"));
}

Status RdmaChannel::Receive(std::vector<std::byte>& message, Deadline deadline) {
  if (closed_by_peer_) return Status::PeerClosed(peer_ + " closed the channel");
  bool mid_message = resume_partial_;
  if (resume_partial_) {
    message.swap(partial_);
    resume_partial_ = false;
  } else {
    message.clear();
  }
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ProgressLocked();
    if (!pending_.empty()) {
      Pending next = pending_.front();
      pending_.pop_front();
      if (next.end_of_stream) {
        if (mid_message) {
          FailLocked(Status::Corruption(peer_ + " closed the channel in the middle of a message"));
          return broken_;
        }
        closed_by_peer_ = true;
        return Status::PeerClosed(peer_ + " closed the channel");
      }
      if (message.size() + next.arrival.bytes > options_.max_message_bytes) {
        FailLocked(Status::Corruption("message from " + peer_ + " grows past the " +
                                      std::to_string(options_.max_message_bytes) + "-byte limit"));
        return broken_;
      }
      // The arrived slots are ours until we return their credit: copy without the lock.
      lock.unlock();
      const std::byte* from = verbs_->ring.data() + next.arrival.offset;
      message.insert(message.end(), from, from + next.arrival.bytes);
      lock.lock();
      Status consumed = ring_.Consume(next.arrival.slots);
      if (!consumed.ok()) {
        FailLocked(consumed);
        return broken_;
      }
      ReturnCreditsLocked(/*force=*/false);
      mid_message = !next.last;
      if (next.last) return Status::Ok();
      continue;
    }
    // After a disconnect, wait for the flushed receives: once none is outstanding, everything
    // the peer delivered before it went away is in pending_.
    if (!broken_.ok() || (disconnected_ && receives_outstanding_ == 0)) return DeadConnectionLocked(mid_message);
    // About to wait for the peer: it may be waiting for these credits.
    ReturnCreditsLocked(/*force=*/true);
    Status waited = WaitLocked(lock, kReceiver, deadline);
    if (!waited.ok()) {
      if (mid_message) {
        partial_.swap(message);
        message.clear();
        resume_partial_ = true;
      }
      return waited.WithContext("receiving from " + peer_);
    }
  }
}

Status RdmaChannel::Close(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!send_refused_.ok()) return send_refused_;
  for (;;) {
    ProgressLocked();
    // The end-of-stream completion implies every earlier write completed too (RC completes
    // a send queue in order): the peer's adapter holds all we sent.
    if (end_of_stream_acked_) return Status::Ok();
    if (!broken_.ok()) return broken_.WithContext("closing the channel to " + peer_);
    // As in Receive: only once our sends are flushed is a missing acknowledgement final.
    if (disconnected_ && sends_outstanding_ == 0) {
      return Status::Broken("connection to " + peer_ + " is gone; it could not be closed cleanly");
    }
    if (!end_of_stream_sent_ && !disconnected_ && sends_outstanding_ < send_queue_depth_) {
      Status posted = PostControlLocked(ImmKind::kEndOfStream, 0);
      if (!posted.ok()) {
        FailLocked(posted);
        return broken_;
      }
      end_of_stream_sent_ = true;
      continue;
    }
    UNDERSTUDY_RETURN_IF_ERROR(WaitLocked(lock, kSender, deadline).WithContext("closing the channel to " + peer_));
  }
}

// ---------------------------------------------------------------------------------------
// Connection set-up.

namespace {

void Reject(rdma_cm_id* id, RejectReason reason) {
  Handshake refusal;
  refusal.type = HandshakeType::kReject;
  refusal.reject_reason = reason;
  auto bytes = EncodeHandshake(refusal);
  ::rdma_reject(id, bytes.data(), static_cast<uint8_t>(bytes.size()));
}

Handshake HelloFor(const RdmaChannel::Verbs& verbs, uint32_t slot_count, uint32_t slot_bytes) {
  Handshake hello;
  hello.ring_address = reinterpret_cast<uintptr_t>(verbs.ring.data());
  hello.ring_rkey = verbs.ring_mr->rkey;
  hello.slot_count = slot_count;
  hello.slot_bytes = slot_bytes;
  return hello;
}

// Waits for `expected` on the connection's own event channel; any other connection event is
// a failure. Address and route errors carry a negative errno in `status`.
Result<CmEvent> AwaitEvent(rdma_event_channel* events, rdma_cm_event_type expected, Deadline deadline) {
  for (;;) {
    UNDERSTUDY_ASSIGN_OR_RETURN(CmEvent event, NextCmEvent(events, deadline));
    if (event.type == expected) return event;
    switch (event.type) {
      case RDMA_CM_EVENT_ADDR_ERROR:
      case RDMA_CM_EVENT_ROUTE_ERROR:
      case RDMA_CM_EVENT_CONNECT_ERROR:
      case RDMA_CM_EVENT_UNREACHABLE:
        return Status::IOError(EventName(event.type) + " (" +
                               (event.status < 0 ? std::string(std::strerror(-event.status))
                                                 : "status " + std::to_string(event.status)) +
                               ")");
      case RDMA_CM_EVENT_REJECTED:
      case RDMA_CM_EVENT_DISCONNECTED:
      case RDMA_CM_EVENT_DEVICE_REMOVAL:
        return event;  // the caller decides
      default:
        continue;  // e.g. ADDR_CHANGE while connecting: irrelevant
    }
  }
}

struct Attempt {
  Result<std::unique_ptr<Channel>> channel = Status::Internal("no attempt");
  bool nobody_listening = false;
};

Attempt DialOnce(const sockaddr_in& address, const std::string& where, const ChannelOptions& options,
                 const RdmaOptions& rdma, Deadline deadline) {
  Attempt attempt;
  auto fail = [&](Status status) {
    attempt.channel = status.WithContext("connecting to rdma://" + where);
    return std::move(attempt);
  };
  auto verbs = std::make_unique<RdmaChannel::Verbs>();
  Result<rdma_event_channel*> events = CreateEventChannel();
  if (!events.ok()) return fail(events.status());
  verbs->events = *events;
  if (::rdma_create_id(verbs->events, &verbs->id, nullptr, RDMA_PS_TCP) != 0) {
    return fail(Status::FromErrno("rdma_create_id", errno));
  }
  if (::rdma_resolve_addr(verbs->id, nullptr, const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&address)),
                          TimeoutMillis(deadline)) != 0) {
    return fail(Status::FromErrno("rdma_resolve_addr (is the address on an RDMA-capable interface?)", errno));
  }
  Result<CmEvent> resolved = AwaitEvent(verbs->events, RDMA_CM_EVENT_ADDR_RESOLVED, deadline);
  if (!resolved.ok()) return fail(resolved.status().WithContext("resolving the address"));
  if (resolved->type != RDMA_CM_EVENT_ADDR_RESOLVED) return fail(Status::IOError(EventName(resolved->type)));
  if (::rdma_resolve_route(verbs->id, TimeoutMillis(deadline)) != 0) {
    return fail(Status::FromErrno("rdma_resolve_route", errno));
  }
  Result<CmEvent> routed = AwaitEvent(verbs->events, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline);
  if (!routed.ok()) return fail(routed.status().WithContext("resolving the route"));
  if (routed->type != RDMA_CM_EVENT_ROUTE_RESOLVED) return fail(Status::IOError(EventName(routed->type)));

  // The listener learns our slot_count from the hello and never uses more slots than that,
  // so our receive queue covers its chunks into our ring (<= slot_count) and its credits for
  // our chunks in its ring (<= its slot_count <= ours).
  uint32_t receive_depth = 2 * rdma.slot_count + kControlReceives;
  Status set_up = verbs->SetUp(rdma.slot_count, rdma.slot_bytes, receive_depth, rdma.send_queue_depth);
  if (!set_up.ok()) return fail(set_up);
  auto hello = EncodeHandshake(HelloFor(*verbs, rdma.slot_count, rdma.slot_bytes));
  rdma_conn_param parameters{};
  parameters.private_data = hello.data();
  parameters.private_data_len = static_cast<uint8_t>(hello.size());
  parameters.responder_resources = 1;  // we use no RDMA READ or atomics; 1 is what every device allows
  parameters.initiator_depth = 1;
  parameters.retry_count = 7;  // transport retries before a lost peer becomes IBV_WC_RETRY_EXC_ERR
  // Receiver-not-ready cannot happen by construction (see above). Should that reasoning ever
  // be wrong, a finite count turns it into kBroken instead of an endless silent stall.
  parameters.rnr_retry_count = 3;
  if (::rdma_connect(verbs->id, &parameters) != 0) return fail(Status::FromErrno("rdma_connect", errno));

  Result<CmEvent> answer = AwaitEvent(verbs->events, RDMA_CM_EVENT_ESTABLISHED, deadline);
  if (!answer.ok()) return fail(answer.status());
  if (answer->type == RDMA_CM_EVENT_REJECTED) {
    Result<Handshake> refusal = rdma_protocol::DecodeHandshake(answer->private_data);
    if (refusal.ok() && refusal->type == HandshakeType::kReject) {
      return fail(Status::FailedPrecondition("the listener refused us: " +
                                             std::string(rdma_protocol::RejectReasonName(refusal->reject_reason))));
    }
    if (!refusal.ok() && refusal.status().code() == Status::Code::kNotSupported) {
      return fail(Status::NotSupported("the listener refused us: " + refusal.status().message()));
    }
    // Not our listener's answer: nobody listens on that port (yet).
    attempt.nobody_listening = true;
    return fail(Status::IOError("connection refused (rdma_cm reject status " + std::to_string(answer->status) + ")"));
  }
  if (answer->type != RDMA_CM_EVENT_ESTABLISHED) return fail(Status::Broken(EventName(answer->type)));
  verbs->connected = true;
  Result<Handshake> peer = rdma_protocol::DecodeHandshake(answer->private_data);
  if (!peer.ok()) return fail(peer.status().WithContext("the listener's answer"));
  if (peer->type != HandshakeType::kHello) return fail(Status::Corruption("the listener answered with a reject"));
  if (peer->slot_count > rdma.slot_count) {
    return fail(Status::Corruption("the listener's answer announces " + std::to_string(peer->slot_count) +
                                   " slots, more than our " + std::to_string(rdma.slot_count)));
  }
  Status staging = verbs->RegisterStaging(uint64_t{peer->slot_count} * peer->slot_bytes);
  if (!staging.ok()) return fail(staging);

  RdmaChannel::Geometry geometry{rdma.slot_count, rdma.slot_bytes, peer->slot_count, peer->slot_bytes,
                                 peer->ring_address, peer->ring_rkey};
  std::string identity = DescribeAddress(::rdma_get_peer_addr(verbs->id));
  attempt.channel = std::unique_ptr<Channel>(new RdmaChannel(std::move(verbs), geometry, identity, options, rdma));
  return attempt;
}

class RdmaListener : public Listener {
 public:
  RdmaListener(rdma_event_channel* events, rdma_cm_id* id, std::string address, const ChannelOptions& options,
               const RdmaOptions& rdma)
      : events_(events), id_(id), address_(std::move(address)), options_(options), rdma_(rdma) {}
  ~RdmaListener() override {
    ::rdma_destroy_id(id_);
    ::rdma_destroy_event_channel(events_);
  }

  Result<std::unique_ptr<Channel>> Accept(Deadline deadline) override {
    for (;;) {
      Result<CmEvent> event = NextCmEvent(events_, deadline);
      if (!event.ok()) return event.status().WithContext("accepting on " + address_);
      if (event->type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
        return Status::Broken("the RDMA device under " + address_ + " was removed");
      }
      if (event->type != RDMA_CM_EVENT_CONNECT_REQUEST) continue;
      std::string peer = DescribeAddress(::rdma_get_peer_addr(event->id));
      Result<std::unique_ptr<Channel>> channel = AcceptOne(*event, peer, deadline);
      if (channel.ok()) return channel;
      Log("transport", "refused RDMA peer " + peer + ": " + channel.status().message());
    }
  }

  std::string address() const override { return address_; }

 private:
  Result<std::unique_ptr<Channel>> AcceptOne(const CmEvent& request, const std::string& peer, Deadline deadline) {
    auto verbs = std::make_unique<RdmaChannel::Verbs>();
    verbs->id = request.id;  // ours now: destroyed with `verbs` unless the channel takes it
    Result<Handshake> hello = rdma_protocol::DecodeHandshake(request.private_data);
    if (!hello.ok() || hello->type != HandshakeType::kHello) {
      bool version = !hello.ok() && hello.status().code() == Status::Code::kNotSupported;
      Reject(verbs->id, version ? RejectReason::kUnsupportedVersion : RejectReason::kMalformedHello);
      return hello.ok() ? Status::Corruption("the dialer sent a reject instead of a hello") : hello.status();
    }
    // The connection gets its own event channel, so that its disconnect reaches the channel
    // and not this listener. The request event is acknowledged already, as migration needs.
    Result<rdma_event_channel*> events = CreateEventChannel();
    if (!events.ok()) {
      Reject(verbs->id, RejectReason::kNoResources);
      return events.status();
    }
    verbs->events = *events;
    if (::rdma_migrate_id(verbs->id, verbs->events) != 0) {
      Status status = Status::FromErrno("rdma_migrate_id", errno);
      Reject(verbs->id, RejectReason::kNoResources);
      return status;
    }
    // Never more slots than the dialer has: its receive queue was sized for that many credits.
    uint32_t slot_count = std::min(rdma_.slot_count, hello->slot_count);
    uint32_t receive_depth = slot_count + hello->slot_count + kControlReceives;
    Status set_up = verbs->SetUp(slot_count, rdma_.slot_bytes, receive_depth, rdma_.send_queue_depth);
    if (set_up.ok()) set_up = verbs->RegisterStaging(uint64_t{hello->slot_count} * hello->slot_bytes);
    if (!set_up.ok()) {
      Reject(verbs->id, RejectReason::kNoResources);
      return set_up;
    }
    auto answer = EncodeHandshake(HelloFor(*verbs, slot_count, rdma_.slot_bytes));
    rdma_conn_param parameters{};
    parameters.private_data = answer.data();
    parameters.private_data_len = static_cast<uint8_t>(answer.size());
    // As rdma_accept(3) advises: no more than the request offered.
    parameters.responder_resources = std::min<uint8_t>(1, request.initiator_depth);
    parameters.initiator_depth = std::min<uint8_t>(1, request.responder_resources);
    parameters.rnr_retry_count = 3;
    if (::rdma_accept(verbs->id, &parameters) != 0) return Status::FromErrno("rdma_accept", errno);
    Result<CmEvent> established = AwaitEvent(verbs->events, RDMA_CM_EVENT_ESTABLISHED, deadline);
    if (!established.ok()) return established.status().WithContext("waiting for the dialer to confirm");
    if (established->type != RDMA_CM_EVENT_ESTABLISHED) {
      return Status::Broken(EventName(established->type) + " before the connection was established");
    }
    verbs->connected = true;
    RdmaChannel::Geometry geometry{slot_count,           rdma_.slot_bytes,   hello->slot_count, hello->slot_bytes,
                                   hello->ring_address, hello->ring_rkey};
    return std::unique_ptr<Channel>(new RdmaChannel(std::move(verbs), geometry, peer, options_, rdma_));
  }

  rdma_event_channel* const events_;
  rdma_cm_id* const id_;
  const std::string address_;
  const ChannelOptions options_;
  const RdmaOptions rdma_;
};

}  // namespace

Result<std::unique_ptr<Channel>> DialRdma(const std::string& host, uint16_t port, const ChannelOptions& options,
                                          Deadline deadline, const RdmaOptions& rdma) {
  std::string where = host + ":" + std::to_string(port);
  UNDERSTUDY_RETURN_IF_ERROR(CheckArguments(options, rdma, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in address, ResolveIpv4(host, port));
  for (;;) {
    Attempt attempt = DialOnce(address, where, options, rdma, deadline);
    if (attempt.channel.ok() || !attempt.nobody_listening || deadline.Expired()) return std::move(attempt.channel);
    // The listener may still be starting, as for TCP.
    std::this_thread::sleep_for(std::min<Deadline::Clock::duration>(kDialRetryPause, deadline.Remaining()));
  }
}

Result<std::unique_ptr<Listener>> ListenRdma(const std::string& host, uint16_t port, const ChannelOptions& options,
                                             const RdmaOptions& rdma) {
  std::string where = host + ":" + std::to_string(port);
  UNDERSTUDY_RETURN_IF_ERROR(CheckArguments(options, rdma, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in address, ResolveIpv4(host, port));
  UNDERSTUDY_ASSIGN_OR_RETURN(rdma_event_channel * events, CreateEventChannel());
  rdma_cm_id* id = nullptr;
  auto fail = [&](const std::string& what, int error) {
    if (id != nullptr) ::rdma_destroy_id(id);
    ::rdma_destroy_event_channel(events);
    return Status::FromErrno(what + " for rdma://" + where, error);
  };
  if (::rdma_create_id(events, &id, nullptr, RDMA_PS_TCP) != 0) return fail("rdma_create_id", errno);
  if (::rdma_bind_addr(id, reinterpret_cast<sockaddr*>(&address)) != 0) {
    return fail("rdma_bind_addr (is the address on an RDMA-capable interface?)", errno);
  }
  if (::rdma_listen(id, 16) != 0) return fail("rdma_listen", errno);
  std::string bound = "rdma://" + DescribeAddress(::rdma_get_local_addr(id));
  return std::unique_ptr<Listener>(new RdmaListener(events, id, bound, options, rdma));
}

}  // namespace understudy::transport
