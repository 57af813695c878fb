#include "failover/heartbeat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

#include "common/byte_order.h"
#include "common/json_fields.h"
#include "failover/heartbeat_priority.h"

namespace understudy::failover {

namespace {

// Datagram layout (little-endian): magic, pair id, sender instance, sequence, sender's clock,
// echoed clock, how long the echoed datagram waited, then HMAC-SHA256 over all of that.
constexpr uint32_t kMagic = 0x32484455;  // "UDH2": authenticated heartbeats
constexpr size_t kMacBytes = 32;
constexpr size_t kSignedBytes = 4 + 8 * 6;
constexpr size_t kDatagramBytes = kSignedBytes + kMacBytes;

std::array<unsigned char, kMacBytes> Mac(const std::array<uint8_t, 32>& key, const std::byte* data) {
  std::array<unsigned char, kMacBytes> mac{};
  unsigned int length = 0;
  ::HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data), kSignedBytes,
         mac.data(), &length);
  return mac;
}

uint64_t NowNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

Result<sockaddr_in> ParseAddress(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("heartbeat address '" + text + "' is not host:port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (::inet_pton(AF_INET, text.substr(0, colon).c_str(), &address.sin_addr) != 1) {
    return Status::InvalidArgument("heartbeat address '" + text + "' is not an IPv4 address");
  }
  // The peer's address comes in its hello: parsed without exceptions (this runs on the
  // heartbeat thread, where one would end the agent).
  Result<uint64_t> port = ParseUint64Text(std::string_view(text).substr(colon + 1), "heartbeat port");
  if (!port.ok() || *port > 65535) return Status::InvalidArgument("heartbeat address '" + text + "' has a bad port");
  address.sin_port = htons(static_cast<uint16_t>(*port));
  return address;
}

}  // namespace

Result<std::unique_ptr<Heartbeat>> Heartbeat::Start(const std::string& local, const std::string& peer,
                                                    uint64_t pair_id, std::chrono::milliseconds interval,
                                                    const HeartbeatAuth& auth, std::function<void()> on_heard) {
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in address, ParseAddress(local));
  std::unique_ptr<Heartbeat> heartbeat(new Heartbeat());
  heartbeat->socket_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!heartbeat->socket_.valid()) return Status::FromErrno("socket(UDP)", errno);
  if (::bind(heartbeat->socket_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Status::FromErrno("binding heartbeat socket " + local, errno);
  }
  socklen_t length = sizeof(address);
  ::getsockname(heartbeat->socket_.get(), reinterpret_cast<sockaddr*>(&address), &length);
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text));
  heartbeat->local_address_ = std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
  heartbeat->SetPeer(peer);
  heartbeat->pair_id_ = pair_id;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&heartbeat->instance_), sizeof(heartbeat->instance_)) != 1) {
    return Status::Internal("no random bytes for the heartbeat's instance id");
  }
  heartbeat->interval_ = interval;
  heartbeat->auth_ = auth;
  heartbeat->on_heard_ = std::move(on_heard);
  heartbeat->thread_ = std::thread([h = heartbeat.get()] {
    RunAtHeartbeatPriority();
    h->Loop();
  });
  return heartbeat;
}

Heartbeat::~Heartbeat() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Heartbeat::SetPeer(const std::string& peer) {
  MutexLock lock(&mutex_);
  peer_ = peer;
}

HeartbeatStats Heartbeat::stats() const {
  MutexLock lock(&mutex_);
  return stats_;
}

void Heartbeat::SendOne(uint64_t sequence) {
  std::string datagram;
  std::string peer;
  {
    MutexLock lock(&mutex_);
    peer = peer_;
    AppendLittleEndian<uint32_t>(datagram, kMagic);
    AppendLittleEndian<uint64_t>(datagram, pair_id_);
    AppendLittleEndian<uint64_t>(datagram, instance_);
    AppendLittleEndian<uint64_t>(datagram, sequence);
    AppendLittleEndian<uint64_t>(datagram, NowNanos());
    AppendLittleEndian<uint64_t>(datagram, echo_time_ns_);
    // How long the echoed datagram waited here, so the peer can subtract it from the RTT.
    AppendLittleEndian<uint64_t>(datagram, echo_time_ns_ ? NowNanos() - echo_received_ns_ : 0);
  }
  std::array<unsigned char, kMacBytes> mac = Mac(auth_.key, reinterpret_cast<const std::byte*>(datagram.data()));
  datagram.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  Result<sockaddr_in> address = peer.empty() ? Result<sockaddr_in>(Status::NotFound("no peer")) : ParseAddress(peer);
  if (!address.ok() || paused_.load()) return;
  if (::sendto(socket_.get(), datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&*address),
               sizeof(*address)) == static_cast<ssize_t>(datagram.size())) {
    MutexLock lock(&mutex_);
    ++stats_.sent;
  }
}

bool Heartbeat::Accept(const std::byte* buffer, size_t size) {
  MutexLock lock(&mutex_);
  if (size != kDatagramBytes || LoadLittleEndian<uint32_t>(buffer) != kMagic ||
      LoadLittleEndian<uint64_t>(buffer + 4) != pair_id_ ||
      CRYPTO_memcmp(Mac(auth_.key, buffer).data(), buffer + kSignedBytes, kMacBytes) != 0) {
    ++stats_.rejected;
    return false;
  }
  uint64_t peer_instance = LoadLittleEndian<uint64_t>(buffer + 12);
  uint64_t peer_sequence = LoadLittleEndian<uint64_t>(buffer + 20);
  uint64_t peer_time = LoadLittleEndian<uint64_t>(buffer + 28);
  uint64_t echoed_time = LoadLittleEndian<uint64_t>(buffer + 36);
  uint64_t held = LoadLittleEndian<uint64_t>(buffer + 44);
  uint64_t now = NowNanos();
  // Freshness: it must echo one of our own recent datagrams, which only a live peer that
  // holds the key can do. Until then its clock is still echoed back, so it can prove itself.
  uint64_t max_age = static_cast<uint64_t>(std::chrono::nanoseconds(auth_.max_echo_age).count());
  bool fresh = echoed_time != 0 && echoed_time <= now && now - echoed_time <= max_age;
  bool same_sender = peer_instance == peer_instance_;
  if (same_sender && peer_sequence <= last_peer_sequence_) {
    ++stats_.rejected;  // a duplicate or a replay
    return false;
  }
  // Echo the newest clock the peer's host has shown us, so it can prove itself to us in turn.
  // Its clock is monotonic across agent restarts, so an older clock is a replay — unless the
  // peer has been silent for a while (its host may have rebooted and started counting anew).
  if (peer_time > echo_time_ns_ || now - last_fresh_ns_ > max_age) {
    echo_time_ns_ = peer_time;
    echo_received_ns_ = now;
  }
  if (!fresh) {
    ++stats_.stale;
    return false;
  }
  last_fresh_ns_ = now;
  if (!same_sender) {  // a new sender proved itself: a restarted agent, or a new pairing
    peer_instance_ = peer_instance;
    last_peer_sequence_ = peer_sequence - 1;
  }
  if (last_peer_sequence_ != 0 && peer_sequence > last_peer_sequence_ + 1) stats_.lost += peer_sequence - last_peer_sequence_ - 1;
  last_peer_sequence_ = peer_sequence;
  ++stats_.received;
  if (now > echoed_time + held) {
    double rtt = static_cast<double>(now - echoed_time - held) / 1e6;
    stats_.last_rtt_ms = rtt;
    stats_.smoothed_rtt_ms = stats_.smoothed_rtt_ms == 0 ? rtt : 0.875 * stats_.smoothed_rtt_ms + 0.125 * rtt;
  }
  return true;
}

void Heartbeat::NoteHoldUp(std::chrono::steady_clock::duration took) {
  if (took < kHeldUp) return;
  const double ms = std::chrono::duration<double, std::milli>(took).count();
  MutexLock lock(&mutex_);
  ++stats_.held_up;
  stats_.longest_hold_up_ms = std::max(stats_.longest_hold_up_ms, ms);
}

void Heartbeat::Loop() {
  using Clock = std::chrono::steady_clock;
  // A thread that falls behind is the peer's evidence that this host died. It is counted here
  // and logged by the agent's own sampler (HeartbeatPaths::TakeHoldUpReport): this thread
  // never logs, since a log write may block.
  uint64_t sequence = 0;
  auto next_send = Clock::now();
  while (!stopping_.load()) {
    auto now = Clock::now();
    if (now >= next_send) {
      NoteHoldUp(now - next_send);
      next_send = now + interval_;
      SendOne(++sequence);
      NoteHoldUp(Clock::now() - now);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_send - Clock::now());
    pollfd entry{socket_.get(), POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(wait.count(), 50)))) <= 0) continue;
    std::byte buffer[128];
    ssize_t got;
    int valid = 0;
    const auto received = Clock::now();
    while ((got = ::recv(socket_.get(), buffer, sizeof(buffer), 0)) > 0) {
      if (Accept(buffer, static_cast<size_t>(got))) ++valid;
    }
    if (valid > 0 && on_heard_) on_heard_();
    NoteHoldUp(Clock::now() - received);
  }
}

}  // namespace understudy::failover
