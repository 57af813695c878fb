#include "transport/zmq_channel.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/unique_fd.h"
#include "transport/socket_address.h"

namespace understudy::transport {

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kZ85KeyChars = 40;
// CURVE adds "\x07MESSAGE", an 8-byte nonce, a flags byte and a 16-byte MAC to every frame
// (33 bytes in libzmq 4.3); ZMQ_MAXMSGSIZE counts them.
constexpr int64_t kCurveFrameOverhead = 64;
// A connection that has not finished the CURVE handshake by then is dropped.
constexpr int kHandshakeTimeoutMillis = 5000;
// Effectively never. A dialled channel must not reconnect: that would splice a new server's
// stream into this one. -1 would say so, but libzmq then tears down the socket's queue as soon
// as the connection drops (session_base_t::reconnect sends term_endpoint), losing the messages
// the server sent before it went away; a huge interval keeps them readable.
constexpr int kNoReconnectMillis = INT_MAX;
// Each socket a listener binds gets its own ZAP domain, this prefix and a number, so that the
// ZAP handler can tell the socket waiting for its peer from an older one libzmq still closes.
constexpr char kZapDomainPrefix[] = "understudy/";
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr int kClientEvents = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CLOSED | ZMQ_EVENT_CONNECT_RETRIED |
                              ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                              ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                              ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr int kServerEvents = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;

// The end-of-stream frame: static, so lending it to libzmq without a copy is always safe.
const std::byte kEndOfStreamFrame[1] = {kZmqEndOfStreamKind};

Status ZmqFailure(std::string_view what) { return Status::IOError(std::string(what) + ": " + zmq_strerror(zmq_errno())); }

struct SocketCloser {
  void operator()(void* socket) const { zmq_close(socket); }
};
// A ZeroMQ socket, closed (linger 0: queued messages are dropped) when destroyed.
using Socket = std::unique_ptr<void, SocketCloser>;

// Closes the reader of a socket monitor (StartMonitor), after stopping the monitor itself.
// Why: libzmq's I/O thread sends each event to the monitor with a blocking send (libzmq 4.3,
// socket_base_t::monitor_event). Once the reader is gone, the next event of the monitored
// socket (a connection it accepts while being closed, a disconnect) blocks that thread until
// the context ends, and with it every socket of the context: a listener's old port stays
// bound (EADDRINUSE) and no new connection is served. Stopping the monitor first
// (zmq_socket_monitor with no endpoint, under the lock the I/O thread sends under) means no
// event is sent after that, whatever libzmq still has to close.
struct MonitorCloser {
  void* monitored = nullptr;
  void operator()(void* reader) const {
    zmq_socket_monitor(monitored, nullptr, 0);
    zmq_close(reader);
  }
};
// The reader of a socket's monitor. REQUIRES: destroyed before the monitored socket is closed
// (declare it after the Socket, or reset it first).
using Monitor = std::unique_ptr<void, MonitorCloser>;

// Owns a zmq_msg_t.
class ZmqMessage {
 public:
  ZmqMessage() { zmq_msg_init(&message_); }
  ZmqMessage(ZmqMessage&& other) noexcept {
    zmq_msg_init(&message_);
    zmq_msg_move(&message_, &other.message_);
  }
  ZmqMessage& operator=(ZmqMessage&&) = delete;
  ~ZmqMessage() { zmq_msg_close(&message_); }

  // Replaces the contents with `size` uninitialised bytes. False if out of memory.
  bool Allocate(size_t size) {
    zmq_msg_close(&message_);
    if (zmq_msg_init_size(&message_, size) == 0) return true;
    zmq_msg_init(&message_);
    return false;
  }

  zmq_msg_t* get() { return &message_; }
  std::span<std::byte> bytes() { return {static_cast<std::byte*>(zmq_msg_data(&message_)), zmq_msg_size(&message_)}; }
  bool more() const { return zmq_msg_more(&message_) == 1; }

 private:
  zmq_msg_t message_;
};

// Owns a ZeroMQ context; terminating it joins ZeroMQ's threads. REQUIRES: every socket of
// the context is closed before the owner is destroyed.
class Context {
 public:
  Context() : context_(zmq_ctx_new()) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() {
    if (context_ == nullptr) return;
    while (zmq_ctx_term(context_) != 0 && zmq_errno() == EINTR) {
    }
  }
  void* get() const { return context_; }

 private:
  void* context_;
};

Status SetIntOption(void* socket, int option, int value, std::string_view name) {
  if (zmq_setsockopt(socket, option, &value, sizeof(value)) != 0) return ZmqFailure(std::string("setting ") + std::string(name));
  return Status::Ok();
}

Status SetBytesOption(void* socket, int option, const void* value, size_t size, std::string_view name) {
  if (zmq_setsockopt(socket, option, value, size) != 0) return ZmqFailure(std::string("setting ") + std::string(name));
  return Status::Ok();
}

// ZMQ_EVENTS of `socket`. Reading it also processes the socket's pending commands, which is
// what makes the state it reports current and re-arms ZMQ_FD.
int Events(void* socket) {
  int events = 0;
  size_t size = sizeof(events);
  if (zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size) != 0) return 0;
  return events;
}

int NotificationFd(void* socket) {
  int fd = -1;
  size_t size = sizeof(fd);
  if (zmq_getsockopt(socket, ZMQ_FD, &fd, &size) != 0) return -1;
  return fd;
}

std::atomic<uint64_t> monitor_counter{0};

// Starts a socket monitor for `events` and returns the PAIR socket that receives them.
// REQUIRES: called before `socket` binds or connects, so no event is missed.
Result<Monitor> StartMonitor(void* context, void* socket, int events) {
  std::string endpoint = "inproc://understudy-zmq-monitor-" + std::to_string(monitor_counter.fetch_add(1));
  Socket reader(zmq_socket(context, ZMQ_PAIR));
  if (!reader) return ZmqFailure("creating a ZeroMQ monitor socket");
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(reader.get(), ZMQ_LINGER, 0, "ZMQ_LINGER"));
  // Never drop an event, even when nobody has looked for a while (and never block libzmq's
  // I/O thread on a full queue: see MonitorCloser).
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(reader.get(), ZMQ_RCVHWM, 0, "ZMQ_RCVHWM"));
  if (zmq_socket_monitor(socket, endpoint.c_str(), events) != 0) return ZmqFailure("starting a ZeroMQ socket monitor");
  Monitor monitor(reader.release(), MonitorCloser{socket});  // from here on, closing it stops the monitor
  if (zmq_connect(monitor.get(), endpoint.c_str()) != 0) return ZmqFailure("connecting to a ZeroMQ socket monitor");
  return monitor;
}

struct MonitorEvent {
  uint16_t id = 0;
  int32_t value = 0;  // the connection's fd for CONNECTED, ACCEPTED, DISCONNECTED, CLOSED
};

// The next queued event, or nothing if none is queued. Does not wait.
std::optional<MonitorEvent> ReadMonitorEvent(void* monitor) {
  ZmqMessage header;
  if (zmq_msg_recv(header.get(), monitor, ZMQ_DONTWAIT) < 0) return std::nullopt;
  // The second frame (the endpoint) is always there: multipart messages arrive whole.
  while (header.more()) {
    ZmqMessage rest;
    if (zmq_msg_recv(rest.get(), monitor, ZMQ_DONTWAIT) < 0 || !rest.more()) break;
  }
  MonitorEvent event;
  std::span<std::byte> bytes = header.bytes();
  if (bytes.size() < 6) return event;
  std::memcpy(&event.id, bytes.data(), sizeof(event.id));
  std::memcpy(&event.value, bytes.data() + 2, sizeof(event.value));
  return event;
}

std::string Z85(std::span<const uint8_t, kKeyBytes> key) {
  char text[kZ85KeyChars + 1] = {};
  zmq_z85_encode(text, key.data(), key.size());
  return text;
}

using BinaryKey = std::array<uint8_t, kKeyBytes>;

Result<BinaryKey> DecodeKey(const std::string& z85, std::string_view what) {
  if (z85.empty()) return Status::InvalidArgument(std::string(what) + " is missing");
  if (z85.size() != kZ85KeyChars) {
    return Status::InvalidArgument(std::string(what) + " must be a 40-character Z85 CURVE key, not " +
                                   std::to_string(z85.size()) + " characters");
  }
  BinaryKey key;
  if (zmq_z85_decode(key.data(), z85.c_str()) == nullptr) {
    return Status::InvalidArgument(std::string(what) + " is not valid Z85");
  }
  return key;
}

// Decodes a keypair and checks that the public key belongs to the secret key.
Status CheckKeyPair(const std::string& public_key, const std::string& secret_key, std::string_view who, BinaryKey* public_out,
                    BinaryKey* secret_out) {
  UNDERSTUDY_ASSIGN_OR_RETURN(*public_out, DecodeKey(public_key, std::string(who) + "_public_key"));
  UNDERSTUDY_ASSIGN_OR_RETURN(*secret_out, DecodeKey(secret_key, std::string(who) + "_secret_key"));
  char derived[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(derived, secret_key.c_str()) != 0) return ZmqFailure("deriving a CURVE public key");
  if (public_key != derived) {
    return Status::InvalidArgument(std::string(who) + "_public_key does not belong to " + std::string(who) + "_secret_key");
  }
  return Status::Ok();
}

Status CheckHeartbeats(const ZmqCurveOptions& curve) {
  if (curve.heartbeat_interval_ms <= 0 || curve.heartbeat_timeout_ms <= 0) {
    return Status::InvalidArgument("heartbeat_interval_ms and heartbeat_timeout_ms must be positive");
  }
  return Status::Ok();
}

// Options every data socket gets, at either end.
Status ConfigureDataSocket(void* socket, const ZmqCurveOptions& curve, const ChannelOptions& options) {
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket, ZMQ_LINGER, 0, "ZMQ_LINGER"));
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket, ZMQ_SNDHWM, kSendQueueMessages, "ZMQ_SNDHWM"));
  // Unlimited: a full receive queue makes libzmq stop reading the connection, heartbeats
  // included, and drop it as dead (see the header).
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket, ZMQ_RCVHWM, 0, "ZMQ_RCVHWM"));
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket, ZMQ_HEARTBEAT_IVL, curve.heartbeat_interval_ms, "ZMQ_HEARTBEAT_IVL"));
  UNDERSTUDY_RETURN_IF_ERROR(
      SetIntOption(socket, ZMQ_HEARTBEAT_TIMEOUT, curve.heartbeat_timeout_ms, "ZMQ_HEARTBEAT_TIMEOUT"));
  UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket, ZMQ_HANDSHAKE_IVL, kHandshakeTimeoutMillis, "ZMQ_HANDSHAKE_IVL"));
  uint64_t largest_frame = std::min<uint64_t>(static_cast<uint64_t>(options.max_message_bytes) + 1, kMaxFrameBytes);
  int64_t frame_limit = std::max<int64_t>(static_cast<int64_t>(largest_frame) + kCurveFrameOverhead, kMinimumFrameLimit);
  return SetBytesOption(socket, ZMQ_MAXMSGSIZE, &frame_limit, sizeof(frame_limit), "ZMQ_MAXMSGSIZE");
}

// ---------------------------------------------------------------------------------------------
// The channel.

// Everything a channel takes over from Dial or Accept.
struct ChannelParts {
  std::shared_ptr<void> context_owner;  // keeps the ZeroMQ context alive; released last
  std::function<void()> on_destroy;     // after the sockets are closed
  Socket socket;
  Monitor monitor;  // of socket; declared after it, so destroyed first
  int connection_fd = -1;  // libzmq's TCP socket for this connection (for SIOCOUTQ only)
  std::string peer;        // z85 public key
  std::string where;       // for messages
  ChannelOptions options;
};

// Tells Close() when libzmq has released its end-of-stream frame, i.e. encrypted it into the
// connection's output. Shared with libzmq's free callback, which may run after the channel is
// gone.
struct ReleaseSignal {
  UniqueFd event;
  static void Fire(void* /*data*/, void* hint) {
    auto* signal = static_cast<std::shared_ptr<ReleaseSignal>*>(hint);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t ignored = ::write((*signal)->event.get(), &one, sizeof(one));
    delete signal;
  }
};

class ZmqChannel final : public Channel {
 public:
  static Result<std::unique_ptr<Channel>> Create(ChannelParts parts);
  ~ZmqChannel() override;

  Status Send(std::span<const MessagePart> parts, Deadline deadline) override;
  using Channel::Send;
  Status Receive(std::vector<std::byte>& message, Deadline deadline) override;
  Status Close(Deadline deadline) override;
  const std::string& peer_identity() const override { return peer_; }
  std::string authenticated_identity() const override { return peer_; }  // its CURVE public key

 private:
  // The two callers the contract allows at once. Each waits on its own eventfd, which the other
  // signals after touching the sockets: ZMQ_FD is edge-triggered, and a ZeroMQ call made by one
  // side can consume the notification the other side is waiting for.
  enum Side { kSender = 0, kReceiver = 1 };

  // Holds mu_ for one side; whenever it lets go, wakes the other side if that one waits.
  class Turn {
   public:
    Turn(ZmqChannel& channel, Side side) : channel_(channel), side_(side), lock_(channel.mu_) {}
    ~Turn() {
      if (lock_.owns_lock()) channel_.WakeOtherLocked(side_);
    }
    Side side() const { return side_; }
    std::unique_lock<std::mutex>& lock() { return lock_; }

   private:
    ZmqChannel& channel_;
    Side side_;
    std::unique_lock<std::mutex> lock_;
  };

  explicit ZmqChannel(ChannelParts parts);

  // Reads every queued monitor event; latches lost_ when this channel's connection ended.
  // REQUIRES: mu_ held.
  void PollMonitorLocked();
  // Hands `frames` to libzmq as one message, waiting for queue space until the deadline.
  // REQUIRES: mu_ held by `turn`.
  Status SendFramesLocked(Turn& turn, std::vector<ZmqMessage>& frames, Deadline deadline);
  // Sleeps until something may have changed for this side: a ZeroMQ notification, the other
  // side's signal, `extra_fd` readable, or the deadline. Releases mu_ meanwhile.
  // REQUIRES: mu_ held by `turn`.
  void WaitLocked(Turn& turn, Deadline deadline, int extra_fd = -1);
  // REQUIRES: mu_ held.
  void WakeOtherLocked(Side side);
  Status LostLocked() const { return Status::Broken(lost_reason_); }

  // Constant after construction.
  std::shared_ptr<void> context_owner_;
  std::function<void()> on_destroy_;
  const std::string peer_;
  const std::string where_;
  const ChannelOptions options_;
  const int connection_fd_;
  int socket_fd_ = -1;   // ZMQ_FD of socket_
  int monitor_fd_ = -1;  // ZMQ_FD of monitor_
  UniqueFd wake_[2];     // indexed by Side

  std::mutex mu_;
  // Protected by mu_: every call on the two ZeroMQ sockets, and the state below.
  Socket socket_;
  Monitor monitor_;  // of socket_: closed first (MonitorCloser)
  bool waiting_[2] = {false, false};  // indexed by Side
  // Connection state: connected until the monitor reports the connection's end (lost_), which
  // is final. Receive still delivers what arrived before it.
  bool lost_ = false;
  std::string lost_reason_;
  // Our own goodbye went out: Send is refused from then on.
  bool closed_ = false;
  // The peer's goodbye arrived: Receive returns kPeerClosed from then on.
  bool peer_closed_ = false;
  // Sticky failure that makes the channel unusable both ways: a malformed message arrived, or
  // a send stopped halfway through a message.
  Status failure_;
};

Result<std::unique_ptr<Channel>> ZmqChannel::Create(ChannelParts parts) {
  std::unique_ptr<ZmqChannel> channel(new ZmqChannel(std::move(parts)));
  for (UniqueFd& wake : channel->wake_) {
    wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake.valid()) return Status::FromErrno("eventfd", errno);
  }
  channel->socket_fd_ = NotificationFd(channel->socket_.get());
  channel->monitor_fd_ = NotificationFd(channel->monitor_.get());
  if (channel->socket_fd_ < 0 || channel->monitor_fd_ < 0) return ZmqFailure("reading ZMQ_FD");
  return std::unique_ptr<Channel>(std::move(channel));
}

ZmqChannel::ZmqChannel(ChannelParts parts)
    : context_owner_(std::move(parts.context_owner)),
      on_destroy_(std::move(parts.on_destroy)),
      peer_(std::move(parts.peer)),
      where_(std::move(parts.where)),
      options_(parts.options),
      connection_fd_(parts.connection_fd),
      socket_(std::move(parts.socket)),
      monitor_(std::move(parts.monitor)) {}

ZmqChannel::~ZmqChannel() {
  monitor_.reset();  // first: see MonitorCloser
  socket_.reset();
  if (on_destroy_) on_destroy_();
  context_owner_.reset();  // a dialled channel's context: joins its ZeroMQ threads
}

void ZmqChannel::WakeOtherLocked(Side side) {
  Side other = side == kSender ? kReceiver : kSender;
  if (!waiting_[other]) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_[other].get(), &one, sizeof(one));
}

void ZmqChannel::WaitLocked(Turn& turn, Deadline deadline, int extra_fd) {
  Side side = turn.side();
  waiting_[side] = true;
  WakeOtherLocked(side);  // our ZeroMQ calls may have consumed the other side's notification
  turn.lock().unlock();
  pollfd fds[4] = {{socket_fd_, POLLIN, 0}, {monitor_fd_, POLLIN, 0}, {wake_[side].get(), POLLIN, 0}, {extra_fd, POLLIN, 0}};
  ::poll(fds, extra_fd >= 0 ? 4 : 3, deadline.PollTimeoutMillis());  // EINTR: the caller re-checks
  uint64_t signals;
  [[maybe_unused]] ssize_t ignored = ::read(wake_[side].get(), &signals, sizeof(signals));
  turn.lock().lock();
  waiting_[side] = false;
}

void ZmqChannel::PollMonitorLocked() {
  Events(monitor_.get());
  while (std::optional<MonitorEvent> event = ReadMonitorEvent(monitor_.get())) {
    if (event->id == ZMQ_EVENT_DISCONNECTED && event->value == connection_fd_ && !lost_) {
      lost_ = true;
      lost_reason_ = "connection to " + where_ +
                     " ended without a goodbye (the peer died, stopped answering heartbeats, or sent a frame over "
                     "the size limit)";
    }
  }
}

Status ZmqChannel::SendFramesLocked(Turn& turn, std::vector<ZmqMessage>& frames, Deadline deadline) {
  size_t next = 0;
  bool retried = false;
  for (;;) {
    PollMonitorLocked();
    if (!failure_.ok()) return failure_;
    if (lost_) {
      if (next > 0) failure_ = LostLocked();
      return LostLocked();
    }
    while (next < frames.size()) {
      int flags = ZMQ_DONTWAIT | (next + 1 < frames.size() ? ZMQ_SNDMORE : 0);
      if (zmq_msg_send(frames[next].get(), socket_.get(), flags) < 0) break;
      ++next;
    }
    if (next == frames.size()) return Status::Ok();
    if (zmq_errno() != EAGAIN) {
      Status status = ZmqFailure("sending to " + where_);
      if (next > 0) failure_ = status;
      return status;
    }
    // The queue is full (or, halfway through a message, the connection is going away).
    if ((Events(socket_.get()) & ZMQ_POLLOUT) && !retried) {
      retried = true;
      continue;
    }
    if (deadline.Expired()) {
      Status status = Status::DeadlineExceeded("sending to " + where_ + ": the peer is not draining its queue");
      if (next > 0) {
        failure_ = Status::Broken("a send to " + where_ + " timed out halfway through a message; the channel is unusable");
      }
      return status;
    }
    WaitLocked(turn, deadline);
    retried = false;
  }
}

Status ZmqChannel::Send(std::span<const MessagePart> parts, Deadline deadline) {
  size_t total = 0;
  for (const MessagePart& part : parts) total += part.size();
  if (total > options_.max_message_bytes) {
    return Status::InvalidArgument("message of " + std::to_string(total) + " bytes exceeds the channel's limit of " +
                                   std::to_string(options_.max_message_bytes));
  }
  // Pack the kind byte and the parts into frames of at most kMaxFrameBytes, outside the lock.
  std::vector<ZmqMessage> frames((total + 1 + kMaxFrameBytes - 1) / kMaxFrameBytes);
  size_t remaining = total + 1;
  for (ZmqMessage& frame : frames) {
    size_t size = std::min(remaining, kMaxFrameBytes);
    if (!frame.Allocate(size)) return Status::IOError("out of memory for a " + std::to_string(total) + "-byte message");
    remaining -= size;
  }
  size_t frame_index = 0, offset = 1;
  frames[0].bytes()[0] = kZmqDataKind;
  for (const MessagePart& part : parts) {
    size_t done = 0;
    while (done < part.size()) {
      std::span<std::byte> frame = frames[frame_index].bytes();
      size_t n = std::min(part.size() - done, frame.size() - offset);
      std::memcpy(frame.data() + offset, part.data() + done, n);
      done += n;
      offset += n;
      if (offset == frame.size() && frame_index + 1 < frames.size()) {
        ++frame_index;
        offset = 0;
      }
    }
  }
  Turn turn(*this, kSender);
  if (closed_) return Status::FailedPrecondition("sending to " + where_ + ": this side already closed the channel");
  return SendFramesLocked(turn, frames, deadline);
}

Status ZmqChannel::Receive(std::vector<std::byte>& message, Deadline deadline) {
  std::vector<ZmqMessage> frames;
  {
    Turn turn(*this, kReceiver);
    for (;;) {
      // The monitor first: if it says the connection ended, everything received before that
      // is already visible below (libzmq queues data before it reports the disconnect).
      PollMonitorLocked();
      if (!failure_.ok()) return failure_;
      if (peer_closed_) return Status::PeerClosed(peer_ + " closed the channel");
      if (Events(socket_.get()) & ZMQ_POLLIN) {
        // A multipart message is queued whole, so every frame is already here.
        do {
          frames.emplace_back();
          if (zmq_msg_recv(frames.back().get(), socket_.get(), ZMQ_DONTWAIT) < 0) {
            failure_ = ZmqFailure("receiving from " + where_);
            return failure_;
          }
        } while (frames.back().more());
        break;
      }
      if (lost_) return LostLocked();
      if (deadline.Expired()) return Status::DeadlineExceeded("receiving from " + where_);
      WaitLocked(turn, deadline);
    }
  }
  // Decode and copy without holding the lock.
  Status verdict;
  std::span<std::byte> first = frames[0].bytes();
  size_t total = 0;
  for (ZmqMessage& frame : frames) total += frame.bytes().size();
  if (first.empty()) {
    verdict = Status::Corruption("message from " + where_ + " has an empty first frame");
  } else if (first[0] == kZmqEndOfStreamKind) {
    verdict = total == 1 ? Status::PeerClosed(peer_ + " closed the channel")
                         : Status::Corruption("end-of-stream frame from " + where_ + " carries a payload");
  } else if (first[0] != kZmqDataKind) {
    char kind[8];
    std::snprintf(kind, sizeof(kind), "0x%02x", static_cast<unsigned>(first[0]));
    verdict = Status::Corruption("message from " + where_ + " has unknown kind " + kind);
  } else if (total - 1 > options_.max_message_bytes) {
    verdict = Status::Corruption("message from " + where_ + " is " + std::to_string(total - 1) + " bytes, over the " +
                                 std::to_string(options_.max_message_bytes) + "-byte limit");
  } else {
    message.resize(total - 1);
    std::byte* out = message.data();
    for (size_t i = 0; i < frames.size(); ++i) {
      std::span<std::byte> bytes = frames[i].bytes().subspan(i == 0 ? 1 : 0);
      if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
      out += bytes.size();
    }
    return Status::Ok();
  }
  Turn turn(*this, kReceiver);
  if (verdict.code() == Status::Code::kPeerClosed) {
    peer_closed_ = true;
  } else {
    failure_ = verdict.WithContext("the channel is unusable");
  }
  return verdict;
}

Status ZmqChannel::Close(Deadline deadline) {
  auto released = std::make_shared<ReleaseSignal>();
  released->event.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!released->event.valid()) return Status::FromErrno("eventfd", errno);
  std::vector<ZmqMessage> frames(1);
  auto* hint = new std::shared_ptr<ReleaseSignal>(released);
  if (zmq_msg_init_data(frames[0].get(), const_cast<std::byte*>(kEndOfStreamFrame), sizeof(kEndOfStreamFrame),
                        &ReleaseSignal::Fire, hint) != 0) {
    delete hint;
    return ZmqFailure("preparing the end-of-stream frame");
  }
  Turn turn(*this, kSender);
  if (closed_) return Status::Ok();
  PollMonitorLocked();
  if (peer_closed_ && lost_) {  // the peer said goodbye and left: nobody to say it to
    closed_ = true;
    return Status::Ok();
  }
  UNDERSTUDY_RETURN_IF_ERROR(SendFramesLocked(turn, frames, deadline).WithContext("closing"));
  closed_ = true;
  // Wait until libzmq has encrypted the frame into the connection's output (it writes it to
  // the socket in the same step)...
  for (;;) {
    uint64_t count;
    if (::read(released->event.get(), &count, sizeof(count)) == sizeof(count)) break;
    Events(socket_.get());  // keeps ZMQ_FD quiet while we wait
    PollMonitorLocked();
    if (lost_) return LostLocked().WithContext("closing");
    if (deadline.Expired()) return Status::DeadlineExceeded("closing the channel to " + where_ + ": the goodbye is still queued");
    WaitLocked(turn, deadline, released->event.get());
  }
  // ...and until the peer's kernel has acknowledged every byte, so that destroying the channel
  // right away (which closes the socket) cannot lose it.
  for (;;) {
    int unacknowledged = 0;
    if (connection_fd_ < 0 || ::ioctl(connection_fd_, SIOCOUTQ, &unacknowledged) != 0 || unacknowledged == 0) break;
    Events(socket_.get());
    PollMonitorLocked();
    if (lost_) return LostLocked().WithContext("closing");
    if (deadline.Expired()) {
      return Status::DeadlineExceeded("closing the channel to " + where_ + ": the peer has not acknowledged the goodbye");
    }
    WaitLocked(turn, deadline.Min(Deadline::AfterMillis(1)));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The server: a context, its ZAP handler, and the listener.

// Shared by a listener and the channel it accepted: the ZeroMQ context (whose sockets they
// own), the ZAP handler thread that authenticates connections to them, and the allow-list.
// The handler must outlive every CURVE server socket of the context: without a handler libzmq
// admits every client.
class ServerCore {
 public:
  static Result<std::shared_ptr<ServerCore>> Start(std::set<BinaryKey> allowed) {
    std::shared_ptr<ServerCore> core(new ServerCore(std::move(allowed)));
    if (core->context_.get() == nullptr) return ZmqFailure("creating a ZeroMQ context");
    Socket handler(zmq_socket(core->context_.get(), ZMQ_REP));
    if (!handler) return ZmqFailure("creating the ZAP handler socket");
    UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(handler.get(), ZMQ_LINGER, 0, "ZMQ_LINGER"));
    if (zmq_bind(handler.get(), kZapEndpoint) != 0) return ZmqFailure("binding the ZAP handler");
    // The socket moves to the thread (thread creation is the full barrier ZeroMQ asks for).
    core->zap_thread_ = std::thread([raw = core.get(), socket = handler.release()] { raw->ServeZap(Socket(socket)); });
    return core;
  }

  ~ServerCore() {
    if (zap_thread_.joinable()) {
      zmq_ctx_shutdown(context_.get());  // the handler's blocking receive returns ETERM
      zap_thread_.join();
    }
  }

  void* context() const { return context_.get(); }

  // Which connections the ZAP handler admits allow-listed clients on: those to the socket of
  // ZAP domain `domain`, the listener's socket while it has no peer yet (pairs are 1:1). Set
  // before that socket binds: from its first connection on, it must not be refused.
  void AdmitOn(std::string domain) {
    std::lock_guard<std::mutex> lock(mu_);
    admitting_domain_ = std::move(domain);
  }
  // Refuses every client from now on (the listener's socket has its peer).
  void StopAdmitting() {
    std::lock_guard<std::mutex> lock(mu_);
    admitting_domain_.clear();
  }
  void SetChannelOpen(bool open) {
    std::lock_guard<std::mutex> lock(mu_);
    channel_open_ = open;
  }
  bool channel_open() {
    std::lock_guard<std::mutex> lock(mu_);
    return channel_open_;
  }

 private:
  explicit ServerCore(std::set<BinaryKey> allowed) : allowed_(std::move(allowed)) {}

  // ZAP (ZeroMQ RFC 27): one request per connection's handshake, answered 200 (admit), 300
  // (temporary refusal: the client is dropped silently) or 400 (refused: the client is told).
  void ServeZap(Socket socket) {
    for (;;) {
      std::vector<std::string> request;
      bool more = true;
      while (more) {
        ZmqMessage frame;
        if (zmq_msg_recv(frame.get(), socket.get(), 0) < 0) {
          if (zmq_errno() == EINTR) continue;
          return;  // ETERM: the context is shutting down
        }
        std::span<std::byte> bytes = frame.bytes();
        request.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        more = frame.more();
      }
      std::string status = "400", text = "refused", user;
      if (request.size() < 7 || request[0] != "1.0" || request[5] != "CURVE" || request[6].size() != kKeyBytes) {
        Log("transport", "refused a malformed ZAP request (not CURVE?)");
      } else {
        BinaryKey key;
        std::memcpy(key.data(), request[6].data(), kKeyBytes);
        std::string z85 = Z85(key);
        std::lock_guard<std::mutex> lock(mu_);
        if (allowed_.count(key) == 0) {
          Log("transport", "refused CURVE client " + z85 + ": not in the allow-list");
        } else if (admitting_domain_.empty() || request[2] != admitting_domain_) {
          status = "300";
          text = "busy";
          // A second peer retries every few milliseconds until its deadline: log the first
          // refusal and then one a second.
          auto now = std::chrono::steady_clock::now();
          if (now - busy_logged_at_ >= std::chrono::seconds(1)) {
            busy_logged_at_ = now;
            Log("transport", "refused CURVE client " + z85 +
                                 ": this listener's channel already has its peer (Understudy pairs are 1:1)");
          }
        } else {
          status = "200";
          text = "OK";
          user = z85;
        }
      }
      // version, request id, status code, status text, user id, metadata (none)
      const std::string reply[] = {"1.0", request.size() > 1 ? request[1] : "", status, text, user, ""};
      for (size_t i = 0; i < std::size(reply); ++i) {
        zmq_send(socket.get(), reply[i].data(), reply[i].size(), i + 1 < std::size(reply) ? ZMQ_SNDMORE : 0);
      }
    }
  }

  Context context_;
  const std::set<BinaryKey> allowed_;
  std::thread zap_thread_;

  std::mutex mu_;
  std::string admitting_domain_;  // protected by mu_; empty: nobody
  bool channel_open_ = false;  // protected by mu_
  std::chrono::steady_clock::time_point busy_logged_at_;  // protected by mu_
};

class ZmqListener : public Listener {
 public:
  ZmqListener(std::shared_ptr<ServerCore> core, BinaryKey secret_key, std::string ip, uint16_t port,
              const ZmqCurveOptions& curve, const ChannelOptions& options)
      : core_(std::move(core)), secret_key_(secret_key), ip_(std::move(ip)), curve_(curve), options_(options), port_(port) {
    curve_.server_secret_key.clear();  // kept as secret_key_ only
  }

  ~ZmqListener() override {
    monitor_.reset();  // first: see MonitorCloser
    socket_.reset();
  }

  // Binds a fresh socket to the listener's address (the port stays the same once chosen).
  // Retries while the address is still held by the previous socket, which libzmq closes
  // asynchronously, until the deadline.
  Status Bind(Deadline deadline) {
    std::string endpoint = "tcp://" + ip_ + ":" + (port_ == 0 ? std::string("*") : std::to_string(port_));
    for (;;) {
      Socket socket(zmq_socket(core_->context(), ZMQ_PAIR));
      if (!socket) return ZmqFailure("creating a ZeroMQ socket");
      UNDERSTUDY_RETURN_IF_ERROR(ConfigureDataSocket(socket.get(), curve_, options_));
      UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket.get(), ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER"));
      UNDERSTUDY_RETURN_IF_ERROR(
          SetBytesOption(socket.get(), ZMQ_CURVE_SECRETKEY, secret_key_.data(), kKeyBytes, "ZMQ_CURVE_SECRETKEY"));
      const std::string domain = kZapDomainPrefix + std::to_string(++sockets_made_);
      UNDERSTUDY_RETURN_IF_ERROR(
          SetBytesOption(socket.get(), ZMQ_ZAP_DOMAIN, domain.data(), domain.size(), "ZMQ_ZAP_DOMAIN"));
      UNDERSTUDY_ASSIGN_OR_RETURN(Monitor monitor, StartMonitor(core_->context(), socket.get(), kServerEvents));
      // Admitting before binding: libzmq serves the socket from inside zmq_bind on, and a client
      // refused there (ZAP 300) would hear nothing until its handshake timed out. The previous
      // socket's domain is refused from here on, should libzmq still accept on it.
      core_->AdmitOn(domain);
      if (zmq_bind(socket.get(), endpoint.c_str()) == 0) {
        char bound[256] = {};
        size_t size = sizeof(bound);
        if (zmq_getsockopt(socket.get(), ZMQ_LAST_ENDPOINT, bound, &size) != 0) return ZmqFailure("reading the bound port");
        std::string text(bound);
        port_ = static_cast<uint16_t>(std::stoul(text.substr(text.rfind(':') + 1)));
        socket_ = std::move(socket);
        monitor_ = std::move(monitor);
        open_connections_.clear();
        return Status::Ok();
      }
      if (zmq_errno() != EADDRINUSE) return ZmqFailure("binding " + endpoint);
      if (deadline.Expired()) {
        // Not an error: libzmq still closes the previous connection's socket. Callers that
        // poll Accept with short deadlines simply try again.
        return Status::DeadlineExceeded(endpoint + " is still held by the previous connection");
      }
      monitor.reset();
      socket.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  Result<std::unique_ptr<Channel>> Accept(Deadline deadline) override {
    if (!socket_) {
      if (core_->channel_open()) {
        return Status::FailedPrecondition("the channel accepted on " + address() +
                                          " is still open; ZeroMQ pairs are 1:1, destroy it before accepting again");
      }
      UNDERSTUDY_RETURN_IF_ERROR(Bind(deadline));
    }
    for (;;) {
      PollMonitor();
      Events(socket_.get());
      std::vector<ZmqMessage> frames;
      do {
        frames.emplace_back();
        if (zmq_msg_recv(frames.back().get(), socket_.get(), ZMQ_DONTWAIT) < 0) {
          frames.pop_back();
          break;
        }
      } while (frames.back().more());
      if (!frames.empty()) {
        Result<std::unique_ptr<Channel>> channel = AdmitPeer(frames);
        if (channel.ok() || channel.status().code() != Status::Code::kCorruption) return channel;
        // The peer is unusable. A PAIR socket cannot drop one connection, so start afresh.
        Log("transport", "dropped a peer of " + address() + ": " + channel.status().message());
        monitor_.reset();  // first: see MonitorCloser
        socket_.reset();
        UNDERSTUDY_RETURN_IF_ERROR(Bind(deadline));
        continue;
      }
      if (deadline.Expired()) return Status::DeadlineExceeded("no authenticated peer connected to " + address());
      zmq_pollitem_t items[] = {{socket_.get(), 0, ZMQ_POLLIN, 0}, {monitor_.get(), 0, ZMQ_POLLIN, 0}};
      if (zmq_poll(items, 2, deadline.PollTimeoutMillis()) < 0 && zmq_errno() != EINTR) return ZmqFailure("zmq_poll");
    }
  }

  std::string address() const override { return "zmq+curve://" + ip_ + ":" + std::to_string(port_); }

 private:
  void PollMonitor() {
    Events(monitor_.get());
    while (std::optional<MonitorEvent> event = ReadMonitorEvent(monitor_.get())) {
      if (event->id == ZMQ_EVENT_ACCEPTED) open_connections_.insert(event->value);
      if (event->id == ZMQ_EVENT_DISCONNECTED) open_connections_.erase(event->value);
    }
  }

  // Ends every open connection to the bound socket but `winner`'s. A client that also finished
  // its handshake lost the race: libzmq's PAIR socket leaves its connection attached to
  // nothing, and whether heartbeats would ever drop it depends on whether it sends a message
  // after libzmq noticed (libzmq stops reading such a connection only then). So the listener
  // shuts down the reading side of the TCP socket libzmq accepted for it (known from the
  // monitor's ACCEPTED event): libzmq reads end-of-file, closes the connection as if the peer
  // had, and the client's channel reports kBroken. Reading side only: libzmq 4.3 asserts
  // (stream_engine_base.cpp, "!_io_error") when a connection whose input it had stopped reports
  // a hang-up, which a shutdown of both sides raises. A connection whose input libzmq had
  // stopped is left to the heartbeats, which then do drop it. A descriptor is shut down only if
  // it still is a connection accepted on this listener's port (libzmq may have closed it
  // meanwhile, and the number been reused).
  void CutOtherConnections(int winner) {
    for (int fd : open_connections_) {
      if (fd == winner || !IsConnectionAcceptedHere(fd)) continue;
      ::shutdown(fd, SHUT_RD);
    }
  }

  bool IsConnectionAcceptedHere(int fd) const {
    sockaddr_in local{}, remote{};
    socklen_t local_size = sizeof(local), remote_size = sizeof(remote);
    int listening = 1;
    socklen_t listening_size = sizeof(listening);
    return ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) == 0 && local.sin_family == AF_INET &&
           ntohs(local.sin_port) == port_ &&
           ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &listening_size) == 0 && listening == 0 &&
           ::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &remote_size) == 0;
  }

  // The first message of a connection: the hello. kCorruption if the peer cannot be accepted.
  Result<std::unique_ptr<Channel>> AdmitPeer(std::vector<ZmqMessage>& frames) {
    const char* user = zmq_msg_gets(frames[0].get(), "User-Id");
    std::string peer = user != nullptr ? user : "";
    std::span<std::byte> hello = frames[0].bytes();
    std::string_view payload(reinterpret_cast<const char*>(hello.data()), hello.size());
    if (frames.size() != 1 || payload.empty() || hello[0] != kZmqHelloKind) {
      return Status::Corruption("client " + peer + " did not start with a hello");
    }
    if (payload.substr(1) != kZmqHelloPayload) {
      return Status::Corruption("client " + peer + " speaks '" + std::string(payload.substr(1, 64)) + "', not '" +
                                std::string(kZmqHelloPayload) + "'");
    }
    if (peer.size() != kZ85KeyChars) return Status::Corruption("a client has no CURVE identity");
    int fd = zmq_msg_get(frames[0].get(), ZMQ_SRCFD);
    // No client is admitted from here on. Every connection admitted before was accepted before
    // its ZAP request, so its ACCEPTED event is queued by now, like this connection's: if the
    // connection is not open any more, it ended before we got here.
    core_->StopAdmitting();
    PollMonitor();
    if (fd < 0 || open_connections_.count(fd) == 0) return Status::Corruption("client " + peer + " went away before it was accepted");
    CutOtherConnections(fd);
    core_->SetChannelOpen(true);
    ChannelParts parts;
    parts.context_owner = core_;
    parts.on_destroy = [core = core_] { core->SetChannelOpen(false); };
    parts.socket = std::move(socket_);
    parts.monitor = std::move(monitor_);
    parts.connection_fd = fd;
    parts.peer = peer;
    parts.where = "CURVE client " + peer;
    parts.options = options_;
    open_connections_.clear();
    return ZmqChannel::Create(std::move(parts));
  }

  // Constant after construction.
  std::shared_ptr<ServerCore> core_;
  const BinaryKey secret_key_;
  const std::string ip_;
  ZmqCurveOptions curve_;
  const ChannelOptions options_;

  uint16_t port_;  // 0 until the first bind chose one
  uint64_t sockets_made_ = 0;  // numbers each socket's ZAP domain
  // The bound socket waiting for its peer; null once handed to a channel.
  Socket socket_;
  Monitor monitor_;  // of socket_: closed first (MonitorCloser)
  // Connections to socket_ that are open, by libzmq's fd, from the monitor's events in order.
  std::set<int> open_connections_;
};

}  // namespace

Result<ZmqCurveKeyPair> GenerateZmqCurveKeyPair() {
  char public_key[kZ85KeyChars + 1] = {}, secret_key[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) return ZmqFailure("generating a CURVE keypair");
  return ZmqCurveKeyPair{public_key, secret_key};
}

Result<std::unique_ptr<Channel>> DialZmqCurve(const std::string& host, uint16_t port, const ZmqCurveOptions& curve,
                                              const ChannelOptions& options, Deadline deadline) {
  BinaryKey client_public, client_secret;
  UNDERSTUDY_RETURN_IF_ERROR(CheckKeyPair(curve.client_public_key, curve.client_secret_key, "client", &client_public, &client_secret));
  UNDERSTUDY_ASSIGN_OR_RETURN(BinaryKey server_public, DecodeKey(curve.server_public_key, "server_public_key"));
  UNDERSTUDY_RETURN_IF_ERROR(CheckHeartbeats(curve));
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in resolved, ResolveIpv4(host, port));
  const std::string ip = Ipv4Text(resolved);
  const std::string endpoint = "tcp://" + ip + ":" + std::to_string(port);
  const std::string where = "zmq+curve://" + host + ":" + std::to_string(port);
  auto context = std::make_shared<Context>();
  if (context->get() == nullptr) return ZmqFailure("creating a ZeroMQ context");

  std::string last_failure = "nothing answered";
  for (;;) {
    Socket socket(zmq_socket(context->get(), ZMQ_PAIR));
    if (!socket) return ZmqFailure("creating a ZeroMQ socket");
    UNDERSTUDY_RETURN_IF_ERROR(ConfigureDataSocket(socket.get(), curve, options));
    UNDERSTUDY_RETURN_IF_ERROR(SetIntOption(socket.get(), ZMQ_RECONNECT_IVL, kNoReconnectMillis, "ZMQ_RECONNECT_IVL"));
    UNDERSTUDY_RETURN_IF_ERROR(
        SetBytesOption(socket.get(), ZMQ_CURVE_SERVERKEY, server_public.data(), kKeyBytes, "ZMQ_CURVE_SERVERKEY"));
    UNDERSTUDY_RETURN_IF_ERROR(
        SetBytesOption(socket.get(), ZMQ_CURVE_PUBLICKEY, client_public.data(), kKeyBytes, "ZMQ_CURVE_PUBLICKEY"));
    UNDERSTUDY_RETURN_IF_ERROR(
        SetBytesOption(socket.get(), ZMQ_CURVE_SECRETKEY, client_secret.data(), kKeyBytes, "ZMQ_CURVE_SECRETKEY"));
    UNDERSTUDY_ASSIGN_OR_RETURN(Monitor monitor, StartMonitor(context->get(), socket.get(), kClientEvents));
    if (zmq_connect(socket.get(), endpoint.c_str()) != 0) return ZmqFailure("connecting to " + endpoint);

    // Follow this attempt until it succeeds or its connection is gone.
    int connection_fd = -1;
    bool attempt_over = false;
    while (!attempt_over) {
      std::optional<MonitorEvent> event = ReadMonitorEvent(monitor.get());
      if (!event) {
        if (deadline.Expired()) return Status::DeadlineExceeded("connecting to " + where + ": " + last_failure);
        zmq_pollitem_t item = {monitor.get(), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, deadline.PollTimeoutMillis()) < 0 && zmq_errno() != EINTR) return ZmqFailure("zmq_poll");
        continue;
      }
      switch (event->id) {
        case ZMQ_EVENT_CONNECTED:
          connection_fd = event->value;
          break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: {
          std::string hello = std::string(1, static_cast<char>(kZmqHelloKind)) + std::string(kZmqHelloPayload);
          if (zmq_send(socket.get(), hello.data(), hello.size(), ZMQ_DONTWAIT) < 0) return ZmqFailure("sending the hello to " + where);
          ChannelParts parts;
          parts.context_owner = context;
          parts.socket = std::move(socket);
          parts.monitor = std::move(monitor);
          parts.connection_fd = connection_fd;
          parts.peer = curve.server_public_key;
          parts.where = where;
          parts.options = options;
          return ZmqChannel::Create(std::move(parts));
        }
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          if (event->value != 300) {
            return Status::FailedPrecondition(where + " refused our CURVE key " + curve.client_public_key + " (ZAP status " +
                                              std::to_string(event->value) + "); is it in the server's allow-list?");
          }
          last_failure = "the server is busy with another peer";
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
          last_failure = "the CURVE handshake failed with protocol error " + std::to_string(event->value);
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
          last_failure =
              "the connection dropped during the CURVE handshake (is server_public_key right? is the server busy with "
              "another peer?)";
          break;
        case ZMQ_EVENT_CLOSED:
        case ZMQ_EVENT_CONNECT_RETRIED:
          if (connection_fd < 0) last_failure = "connection refused";
          attempt_over = true;
          break;
        case ZMQ_EVENT_DISCONNECTED:
          attempt_over = true;
          break;
        default:
          break;
      }
    }
    monitor.reset();
    socket.reset();
    if (deadline.Expired()) return Status::DeadlineExceeded("connecting to " + where + ": " + last_failure);
    std::this_thread::sleep_for(std::min<Deadline::Clock::duration>(std::chrono::milliseconds(20), deadline.Remaining()));
  }
}

Result<std::unique_ptr<Listener>> ListenZmqCurve(const std::string& host, uint16_t port, const ZmqCurveOptions& curve,
                                                 const ChannelOptions& options) {
  BinaryKey server_public, server_secret;
  UNDERSTUDY_RETURN_IF_ERROR(CheckKeyPair(curve.server_public_key, curve.server_secret_key, "server", &server_public, &server_secret));
  UNDERSTUDY_RETURN_IF_ERROR(CheckHeartbeats(curve));
  std::set<BinaryKey> allowed;
  for (const std::string& key : curve.allowed_client_keys) {
    UNDERSTUDY_ASSIGN_OR_RETURN(BinaryKey binary, DecodeKey(key, "allowed client key '" + key + "'"));
    allowed.insert(binary);
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in resolved, ResolveIpv4(host, port));
  const std::string ip = Ipv4Text(resolved);
  UNDERSTUDY_ASSIGN_OR_RETURN(std::shared_ptr<ServerCore> core, ServerCore::Start(std::move(allowed)));
  auto listener = std::make_unique<ZmqListener>(std::move(core), server_secret, ip, port, curve, options);
  UNDERSTUDY_RETURN_IF_ERROR(listener->Bind(Deadline::Now()));
  return std::unique_ptr<Listener>(std::move(listener));
}

}  // namespace understudy::transport
