// TcpChannel: the Channel over a plain TCP connection. No encryption, no authentication:
// only for tests and for hosts joined by a trusted link, and only when configured with
// `insecure: true`.
//
// Framing: transport/frame_assembler.h (a length word, then the payload).
#ifndef UNDERSTUDY_TRANSPORT_TCP_CHANNEL_H_
#define UNDERSTUDY_TRANSPORT_TCP_CHANNEL_H_

#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "transport/channel.h"
#include "transport/frame_assembler.h"

namespace understudy::transport {

class TcpChannel : public Channel {
 public:
  TcpChannel(UniqueFd socket, std::string peer, const ChannelOptions& options);

  Status Send(std::span<const MessagePart> parts, Deadline deadline) override;
  using Channel::Send;
  Status Receive(std::vector<std::byte>& message, Deadline deadline) override;
  Status Close(Deadline deadline) override;
  const std::string& peer_identity() const override { return peer_; }

 private:
  UniqueFd socket_;
  std::string peer_;
  ChannelOptions options_;
  FrameAssembler frame_;  // the frame being received, kept across Receive calls
  bool closed_by_peer_ = false;
  bool send_failed_ = false;  // a Send stopped mid-message: the outgoing stream is unusable
};

// A TCP listening socket. Wrapping transports (TLS) take raw accepted sockets from it.
class TcpListener : public Listener {
 public:
  TcpListener(UniqueFd socket, std::string address, ChannelOptions options)
      : socket_(std::move(socket)), address_(std::move(address)), options_(std::move(options)) {}

  Result<std::unique_ptr<Channel>> Accept(Deadline deadline) override;
  std::string address() const override { return address_; }
  // The next connected socket, before any framing or handshake.
  Result<UniqueFd> AcceptSocket(Deadline deadline);
  // The listening socket, for callers that poll it with other descriptors.
  int fd() const { return socket_.get(); }

 private:
  UniqueFd socket_;
  std::string address_;
  ChannelOptions options_;
};

Result<std::unique_ptr<Channel>> DialTcp(const std::string& host, uint16_t port, const ChannelOptions& options,
                                         Deadline deadline);
Result<std::unique_ptr<TcpListener>> ListenTcp(const std::string& host, uint16_t port, const ChannelOptions& options);

// A connected TCP socket (Nagle off), retrying refused connections until the deadline.
Result<UniqueFd> ConnectRawTcp(const std::string& host, uint16_t port, Deadline deadline);
// "10.0.0.2:41234" for a connected socket.
std::string DescribePeer(int socket);

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_TCP_CHANNEL_H_
