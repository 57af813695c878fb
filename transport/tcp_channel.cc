#include "transport/tcp_channel.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "transport/socket_address.h"

namespace understudy::transport {

namespace {

void TuneSocket(int fd) {
  int one = 1;
  // Checkpoint acks are tiny and latency-critical: never let Nagle hold them back.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

std::string DescribePeer(int socket) {
  sockaddr_in peer{};
  socklen_t length = sizeof(peer);
  if (::getpeername(socket, reinterpret_cast<sockaddr*>(&peer), &length) != 0) return "unknown peer";
  return DescribeAddress(reinterpret_cast<const sockaddr*>(&peer));
}

Result<UniqueFd> TcpListener::AcceptSocket(Deadline deadline) {
  UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(socket_.get()));
  for (;;) {
    int fd = ::accept4(socket_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      TuneSocket(fd);
      return UniqueFd(fd);
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Status::FromErrno("accept on " + address_, errno);
    UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(socket_.get(), /*for_write=*/false, deadline).WithContext("accept on " + address_));
  }
}

Result<std::unique_ptr<Channel>> TcpListener::Accept(Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd socket, AcceptSocket(deadline));
  std::string peer = DescribePeer(socket.get());
  return std::unique_ptr<Channel>(new TcpChannel(std::move(socket), peer, options_));
}

TcpChannel::TcpChannel(UniqueFd socket, std::string peer, const ChannelOptions& options)
    : socket_(std::move(socket)), peer_(std::move(peer)), options_(options), frame_(options.max_message_bytes) {}

Status TcpChannel::Send(std::span<const MessagePart> parts, Deadline deadline) {
  size_t total = 0;
  for (const MessagePart& part : parts) total += part.size();
  if (total > options_.max_message_bytes || total > kFrameLengthMask) {
    return Status::InvalidArgument("message of " + std::to_string(total) + " bytes exceeds the channel's limit");
  }
  if (send_failed_) return Status::Broken("an earlier send to " + peer_ + " stopped mid-message");
  std::byte header[4];
  StoreLittleEndian<uint32_t>(header, static_cast<uint32_t>(total));
  UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(socket_.get()));
  // writev the header and the parts straight from the caller's buffers.
  std::vector<iovec> pending;
  pending.reserve(parts.size() + 1);
  pending.push_back({header, sizeof(header)});
  for (const MessagePart& part : parts) {
    if (!part.empty()) pending.push_back({const_cast<std::byte*>(part.data()), part.size()});
  }
  size_t first = 0;
  while (first < pending.size()) {
    msghdr message{};
    message.msg_iov = &pending[first];
    message.msg_iovlen = std::min<size_t>(pending.size() - first, IOV_MAX);
    ssize_t sent = ::sendmsg(socket_.get(), &message, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        Status writable = WaitForFd(socket_.get(), /*for_write=*/true, deadline);
        if (writable.ok()) continue;
        send_failed_ = first > 0 || pending[0].iov_len != sizeof(header);
        return writable.WithContext("sending to " + peer_);
      }
      send_failed_ = true;
      if (errno == EPIPE || errno == ECONNRESET) return Status::Broken("connection to " + peer_ + " broke: " + std::strerror(errno));
      return Status::FromErrno("sending to " + peer_, errno);
    }
    size_t remaining = static_cast<size_t>(sent);
    while (remaining > 0 && first < pending.size()) {
      if (remaining >= pending[first].iov_len) {
        remaining -= pending[first].iov_len;
        ++first;
      } else {
        pending[first].iov_base = static_cast<std::byte*>(pending[first].iov_base) + remaining;
        pending[first].iov_len -= remaining;
        remaining = 0;
      }
    }
  }
  return Status::Ok();
}

Status TcpChannel::Receive(std::vector<std::byte>& message, Deadline deadline) {
  if (closed_by_peer_) return Status::PeerClosed(peer_ + " closed the channel");
  while (!frame_.complete()) {
    Result<size_t> read = ReadSome(socket_.get(), frame_.space(), deadline);
    if (!read.ok()) {
      if (read.status().code() == Status::Code::kPeerClosed) {
        return Status::Broken("connection from " + peer_ + " ended " + (frame_.mid_frame() ? "mid-message" : "without a goodbye"));
      }
      // A deadline here keeps what arrived: the next Receive continues the same frame.
      return read.status().WithContext("receiving from " + peer_);
    }
    UNDERSTUDY_RETURN_IF_ERROR(frame_.Filled(*read, peer_));
  }
  if (frame_.end_of_stream()) {
    closed_by_peer_ = true;
    return Status::PeerClosed(peer_ + " closed the channel");
  }
  frame_.TakeMessage(message);
  return Status::Ok();
}

Status TcpChannel::Close(Deadline deadline) {
  std::byte header[4];
  StoreLittleEndian<uint32_t>(header, kFrameEndOfStream);
  Status status = WriteAll(socket_.get(), header, deadline);
  ::shutdown(socket_.get(), SHUT_WR);
  return status;
}

Result<UniqueFd> ConnectRawTcp(const std::string& host, uint16_t port, Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in address, ResolveIpv4(host, port));
  std::string where = host + ":" + std::to_string(port);
  for (;;) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Status::FromErrno("socket", errno);
    int result = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    if (result != 0 && errno == EINPROGRESS) {
      UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(fd.get(), /*for_write=*/true, deadline).WithContext("connecting to " + where));
      int error = 0;
      socklen_t length = sizeof(error);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
      result = error == 0 ? 0 : -1;
      errno = error;
    }
    if (result == 0) {
      TuneSocket(fd.get());
      return fd;
    }
    if (errno != ECONNREFUSED || deadline.Expired()) return Status::FromErrno("connecting to " + where, errno);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the peer may still be starting
  }
}

Result<std::unique_ptr<Channel>> DialTcp(const std::string& host, uint16_t port, const ChannelOptions& options,
                                         Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd socket, ConnectRawTcp(host, port, deadline));
  return std::unique_ptr<Channel>(new TcpChannel(std::move(socket), host + ":" + std::to_string(port), options));
}

Result<std::unique_ptr<TcpListener>> ListenTcp(const std::string& host, uint16_t port, const ChannelOptions& options) {
  UNDERSTUDY_ASSIGN_OR_RETURN(sockaddr_in address, ResolveIpv4(host, port));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return Status::FromErrno("binding " + host + ":" + std::to_string(port), errno);
  }
  if (::listen(fd.get(), 16) != 0) return Status::FromErrno("listen", errno);
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  return std::make_unique<TcpListener>(std::move(fd), "tcp://" + DescribeAddress(reinterpret_cast<const sockaddr*>(&bound)), options);
}

}  // namespace understudy::transport
