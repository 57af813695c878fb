#include "failover/heartbeat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/byte_order.h"

namespace understudy::failover {

namespace {

constexpr uint32_t kMagic = 0x42484455;  // "UDHB"
constexpr size_t kDatagramBytes = 4 + 8 * 5;
// Sequence numbers this far behind the newest seen come from a new sender, not the network:
// datagrams are not delayed by 64 periods (over a second at the default 20 ms).
constexpr uint64_t kRestartWindow = 64;
constexpr int kHeartbeatNice = -10;

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
  address.sin_port = htons(static_cast<uint16_t>(std::stoul(text.substr(colon + 1))));
  return address;
}

}  // namespace

Result<std::unique_ptr<Heartbeat>> Heartbeat::Start(const std::string& local, const std::string& peer,
                                                    uint64_t pair_id, std::chrono::milliseconds interval,
                                                    std::function<void()> on_heard) {
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
  heartbeat->interval_ = interval;
  heartbeat->on_heard_ = std::move(on_heard);
  heartbeat->thread_ = std::thread([h = heartbeat.get()] {
    // A heartbeat that waits behind busy work looks like a dead peer: ask for a higher
    // priority than ordinary threads (allowed with CAP_SYS_NICE; best effort otherwise).
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kHeartbeatNice);
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

void Heartbeat::Loop() {
  uint64_t sequence = 0;
  auto next_send = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_send) {
      next_send = now + interval_;
      std::string datagram;
      std::string peer;
      {
        MutexLock lock(&mutex_);
        peer = peer_;
        AppendLittleEndian<uint32_t>(datagram, kMagic);
        AppendLittleEndian<uint64_t>(datagram, pair_id_);
        AppendLittleEndian<uint64_t>(datagram, ++sequence);
        AppendLittleEndian<uint64_t>(datagram, NowNanos());
        AppendLittleEndian<uint64_t>(datagram, echo_time_ns_);
        // How long the echoed datagram waited here, so the peer can subtract it from the RTT.
        AppendLittleEndian<uint64_t>(datagram, echo_time_ns_ ? NowNanos() - echo_received_ns_ : 0);
      }
      Result<sockaddr_in> address = peer.empty() ? Result<sockaddr_in>(Status::NotFound("no peer")) : ParseAddress(peer);
      if (address.ok() && !paused_.load()) {
        if (::sendto(socket_.get(), datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&*address),
                     sizeof(*address)) == static_cast<ssize_t>(datagram.size())) {
          MutexLock lock(&mutex_);
          ++stats_.sent;
        }
      }
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_send - std::chrono::steady_clock::now());
    pollfd entry{socket_.get(), POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(wait.count(), 50)))) <= 0) continue;
    std::byte buffer[128];
    ssize_t got;
    int valid = 0;
    while ((got = ::recv(socket_.get(), buffer, sizeof(buffer), 0)) > 0) {
      MutexLock lock(&mutex_);
      if (got != static_cast<ssize_t>(kDatagramBytes) || LoadLittleEndian<uint32_t>(buffer) != kMagic ||
          LoadLittleEndian<uint64_t>(buffer + 4) != pair_id_) {
        ++stats_.rejected;
        continue;
      }
      uint64_t peer_sequence = LoadLittleEndian<uint64_t>(buffer + 12);
      uint64_t peer_time = LoadLittleEndian<uint64_t>(buffer + 20);
      uint64_t echoed_time = LoadLittleEndian<uint64_t>(buffer + 28);
      uint64_t held = LoadLittleEndian<uint64_t>(buffer + 36);
      // Not newer: a late duplicate — unless it is far older, which means a new heartbeat
      // sender took over the peer's address (a restarted agent, or a promoted standby's
      // agent that began protecting the VM) and counts from the start again.
      bool restarted = peer_sequence + kRestartWindow < last_peer_sequence_ || peer_sequence == 1;
      if (peer_sequence <= last_peer_sequence_ && !restarted) continue;
      if (restarted) last_peer_sequence_ = peer_sequence - 1;
      if (last_peer_sequence_ != 0 && peer_sequence > last_peer_sequence_ + 1) {
        stats_.lost += peer_sequence - last_peer_sequence_ - 1;
      }
      last_peer_sequence_ = peer_sequence;
      echo_time_ns_ = peer_time;
      echo_received_ns_ = NowNanos();
      ++stats_.received;
      ++valid;
      if (echoed_time != 0 && NowNanos() > echoed_time + held) {
        double rtt = static_cast<double>(NowNanos() - echoed_time - held) / 1e6;
        stats_.last_rtt_ms = rtt;
        stats_.smoothed_rtt_ms = stats_.smoothed_rtt_ms == 0 ? rtt : 0.875 * stats_.smoothed_rtt_ms + 0.125 * rtt;
      }
    }
    if (valid > 0 && on_heard_) on_heard_();
  }
}

}  // namespace understudy::failover
