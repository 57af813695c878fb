#include "transport/tls_channel.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "common/byte_order.h"
#include "common/fd_io.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "transport/frame_assembler.h"
#include "transport/tcp_channel.h"

namespace understudy::transport {

namespace {

// Parts up to this size are gathered into one record instead of one SSL_write each.
constexpr size_t kCoalesceBytes = 16 << 10;
// A peer gets this long to complete its handshake before it is refused.
constexpr auto kHandshakeBudget = std::chrono::seconds(3);

struct SslCtxDeleter {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::shared_ptr<SSL_CTX>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// The OpenSSL error queue as one string (and cleared).
std::string TakeOpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no OpenSSL error recorded" : text;
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE on a dead peer. A dead
// peer must surface as kBroken, never kill the agent: ignore SIGPIPE unless the program
// installed its own handler.
void IgnoreSigpipeOnce() {
  static const bool done = [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

Result<SslCtxPtr> MakeContext(const TlsOptions& tls, bool server) {
  IgnoreSigpipeOnce();
  if (tls.ca_file.empty() || tls.cert_file.empty() || tls.key_file.empty()) {
    return Status::InvalidArgument("tls:// needs ca_file, cert_file and key_file (mutual authentication)");
  }
  SslCtxPtr context(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()), SslCtxDeleter());
  if (!context) return Status::Internal("SSL_CTX_new: " + TakeOpenSslErrors());
  SSL_CTX* raw = context.get();
  SSL_CTX_set_min_proto_version(raw, TLS1_3_VERSION);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // No session tickets: we never resume sessions, and a ticket the dialer never reads sits in
  // its receive buffer, so its close() becomes a TCP reset that destroys whatever it sent last
  // and the listener has not read yet (a checkpoint's tail, the goodbye).
  SSL_CTX_set_num_tickets(raw, 0);
  // Both ends are ours: prefer AES-128-GCM (`openssl speed` here: ~4.5 GB/s against
  // AES-256-GCM's ~3 GB/s at 16 KiB records), a margin TLS 1.3 itself deems sufficient.
  const std::string suites =
      tls.ciphersuites.empty() ? "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256" : tls.ciphersuites;
  if (SSL_CTX_set_ciphersuites(raw, suites.c_str()) != 1) {
    return Status::Internal("SSL_CTX_set_ciphersuites: " + TakeOpenSslErrors());
  }
  SSL_CTX_set_options(raw, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_load_verify_locations(raw, tls.ca_file.c_str(), nullptr) != 1) {
    return Status::InvalidArgument("cannot load CA " + tls.ca_file + ": " + TakeOpenSslErrors());
  }
  if (SSL_CTX_use_certificate_chain_file(raw, tls.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("cannot load certificate " + tls.cert_file + ": " + TakeOpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(raw, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::InvalidArgument("cannot load private key " + tls.key_file + ": " + TakeOpenSslErrors());
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    return Status::InvalidArgument("private key " + tls.key_file + " does not match " + tls.cert_file);
  }
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return context;
}

// Drives a non-blocking SSL call until it completes or the deadline passes. `mutex`, when
// given, is held around every call into OpenSSL but never while waiting: one SSL object is
// not safe for a concurrent SSL_read and SSL_write (TLS 1.3 reads may write), yet a Channel
// promises that one thread may send while another receives.
template <typename Operation>
Status Drive(SSL* ssl, int fd, Deadline deadline, Operation operation, const char* what, std::mutex* mutex = nullptr) {
  for (;;) {
    std::unique_lock<std::mutex> lock;
    if (mutex) lock = std::unique_lock<std::mutex>(*mutex);
    ERR_clear_error();
    int result = operation();
    if (result > 0) return Status::Ok();
    int error = SSL_get_error(ssl, result);
    if (lock.owns_lock()) lock.unlock();
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      UNDERSTUDY_RETURN_IF_ERROR(WaitForFd(fd, error == SSL_ERROR_WANT_WRITE, deadline).WithContext(what));
      continue;
    }
    if (error == SSL_ERROR_ZERO_RETURN) return Status::Broken(std::string(what) + ": the peer closed TLS");
    if (error == SSL_ERROR_SYSCALL) {
      int saved = errno;
      std::string queue = ERR_peek_error() ? TakeOpenSslErrors() : (saved ? std::strerror(saved) : "connection ended");
      return Status::Broken(std::string(what) + ": " + queue);
    }
    return Status::Broken(std::string(what) + ": " + TakeOpenSslErrors());
  }
}

std::string PeerName(X509* certificate) {
  char name[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof(name));
  return name;
}

// Why a handshake failed, in words an operator can act on.
std::string DescribeHandshakeFailure(SSL* ssl, const Status& status) {
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) return std::string("certificate rejected: ") + X509_verify_cert_error_string(verify);
  const std::string& message = status.message();
  if (message.find("peer did not return a certificate") != std::string::npos) return "no client certificate";
  if (message.find("wrong version number") != std::string::npos ||
      message.find("packet length too long") != std::string::npos || message.find("http request") != std::string::npos) {
    return "not TLS (plaintext client on a TLS port)";
  }
  if (message.find("unsupported protocol") != std::string::npos) return "peer offered no TLS 1.3";
  return message;
}

class TlsChannel : public Channel {
 public:
  TlsChannel(SslCtxPtr context, SslPtr ssl, UniqueFd socket, std::string identity, std::string authenticated,
             const ChannelOptions& options)
      : context_(std::move(context)),
        ssl_(std::move(ssl)),
        socket_(std::move(socket)),
        identity_(std::move(identity)),
        authenticated_(std::move(authenticated)),
        options_(options),
        frame_(options.max_message_bytes) {}

  ~TlsChannel() override {
    // Best effort: tell the peer's TLS layer we are done (not a Channel goodbye).
    std::lock_guard<std::mutex> lock(ssl_mutex_);
    SSL_shutdown(ssl_.get());
  }

  Status Send(std::span<const MessagePart> parts, Deadline deadline) override {
    if (send_failed_) return Status::Broken("an earlier send to " + identity_ + " stopped mid-message");
    // OpenSSL holds a record it could not flush and expects the very same write again; a
    // different message after a failed one would be spliced onto it. So any failure ends
    // sending on this channel.
    Status sent = SendFrame(parts, deadline);
    if (!sent.ok()) send_failed_ = true;
    return sent;
  }
  using Channel::Send;

  Status SendFrame(std::span<const MessagePart> parts, Deadline deadline) {
    size_t total = 0;
    for (const MessagePart& part : parts) total += part.size();
    if (total > options_.max_message_bytes || total > kFrameLengthMask) {
      return Status::InvalidArgument("message of " + std::to_string(total) + " bytes exceeds the channel's limit");
    }
    std::string pending;
    AppendLittleEndian<uint32_t>(pending, static_cast<uint32_t>(total));
    for (const MessagePart& part : parts) {
      if (part.size() <= kCoalesceBytes) {
        pending.append(reinterpret_cast<const char*>(part.data()), part.size());
        if (pending.size() < kCoalesceBytes) continue;
      }
      UNDERSTUDY_RETURN_IF_ERROR(WriteBytes(std::as_bytes(std::span(pending.data(), pending.size())), deadline));
      pending.clear();
      if (part.size() > kCoalesceBytes) UNDERSTUDY_RETURN_IF_ERROR(WriteBytes(part, deadline));
    }
    return WriteBytes(std::as_bytes(std::span(pending.data(), pending.size())), deadline);
  }

  Status Receive(std::vector<std::byte>& message, Deadline deadline) override {
    if (closed_by_peer_) return Status::PeerClosed(identity_ + " closed the channel");
    while (!frame_.complete()) {
      std::span<std::byte> space = frame_.space();
      size_t read = 0;
      Status status = Drive(
          ssl_.get(), socket_.get(), deadline, [&] { return SSL_read_ex(ssl_.get(), space.data(), space.size(), &read); },
          "TLS read", &ssl_mutex_);
      if (!status.ok()) {
        if (status.code() == Status::Code::kBroken) {
          return Status::Broken("connection from " + identity_ + " ended " + (frame_.mid_frame() ? "mid-message" : "without a goodbye") +
                                " (" + status.message() + ")");
        }
        // A deadline here keeps what arrived: the next Receive continues the same frame.
        return status.WithContext("receiving from " + identity_);
      }
      UNDERSTUDY_RETURN_IF_ERROR(frame_.Filled(read, identity_));
    }
    if (frame_.end_of_stream()) {
      closed_by_peer_ = true;
      return Status::PeerClosed(identity_ + " closed the channel");
    }
    frame_.TakeMessage(message);
    return Status::Ok();
  }

  Status Close(Deadline deadline) override {
    if (send_failed_) return Status::Broken("cannot say goodbye after a failed send");
    std::byte header[4];
    StoreLittleEndian<uint32_t>(header, kFrameEndOfStream);
    return WriteBytes(header, deadline);
  }

  const std::string& peer_identity() const override { return identity_; }
  std::string authenticated_identity() const override { return authenticated_; }

 private:
  Status WriteBytes(std::span<const std::byte> bytes, Deadline deadline) {
    while (!bytes.empty()) {
      size_t written = 0;
      Status status = Drive(
          ssl_.get(), socket_.get(), deadline,
          [&] { return SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &written); }, "TLS write", &ssl_mutex_);
      if (!status.ok()) return status.WithContext("sending to " + identity_);
      bytes = bytes.subspan(written);
    }
    return Status::Ok();
  }

  SslCtxPtr context_;
  SslPtr ssl_;
  std::mutex ssl_mutex_;  // held around each SSL_* call on ssl_, never while waiting
  UniqueFd socket_;
  std::string identity_;
  std::string authenticated_;  // the pin the certificate matched, else its subject CN
  ChannelOptions options_;
  FrameAssembler frame_;  // the frame being received, kept across Receive calls
  bool closed_by_peer_ = false;
  bool send_failed_ = false;  // a send failed: OpenSSL may hold half a record; never send again
};

// The channel a completed handshake on `ssl` proved, named by the peer's certificate (and
// held to the pin, if any).
Result<std::unique_ptr<Channel>> ChannelAfterHandshake(SslCtxPtr context, SslPtr ssl, UniqueFd socket,
                                                       const std::string& address, const ChannelOptions& options) {
  X509* peer = SSL_get0_peer_certificate(ssl.get());
  if (peer == nullptr) return Status::Broken("no peer certificate");
  const std::string& pin = options.tls.expected_peer_name;
  if (!pin.empty() && X509_check_host(peer, pin.c_str(), pin.size(), 0, nullptr) != 1) {
    return Status::Broken("peer certificate names '" + PeerName(peer) + "', not the pinned '" + pin + "'");
  }
  std::string identity = PeerName(peer) + "@" + address;
  std::string authenticated = pin.empty() ? PeerName(peer) : pin;
  return std::unique_ptr<Channel>(
      new TlsChannel(std::move(context), std::move(ssl), std::move(socket), identity, authenticated, options));
}

Result<SslPtr> NewSsl(SSL_CTX* context, int socket) {
  UNDERSTUDY_RETURN_IF_ERROR(SetNonBlocking(socket));
  SslPtr ssl(SSL_new(context));
  if (!ssl) return Status::Internal("SSL_new: " + TakeOpenSslErrors());
  SSL_set_fd(ssl.get(), socket);
  return ssl;
}

// The dialer's side of the handshake, within `deadline`.
Result<std::unique_ptr<Channel>> ClientHandshake(SslCtxPtr context, UniqueFd socket, const std::string& address,
                                                 const ChannelOptions& options, Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(SslPtr ssl, NewSsl(context.get(), socket.get()));
  SSL* raw = ssl.get();
  Status status = Drive(raw, socket.get(), deadline, [&] { return SSL_connect(raw); }, "TLS handshake");
  if (!status.ok()) {
    if (status.code() == Status::Code::kDeadlineExceeded) return Status::DeadlineExceeded("TLS handshake with " + address + " timed out");
    return Status::Broken(DescribeHandshakeFailure(raw, status));
  }
  return ChannelAfterHandshake(std::move(context), std::move(ssl), std::move(socket), address, options);
}

// The listener drives every pending handshake at once from one poll(2) loop, so an idle or
// slow peer costs one slot and its own budget — never the next peer's time. At most
// kMaxPendingHandshakes wait; a new connection beyond that evicts the oldest, so a flood of
// idle connections cannot lock a returning peer out for long (it is refused once, at worst,
// and its retry gets in).
constexpr size_t kMaxPendingHandshakes = 64;

class TlsListener : public Listener {
 public:
  TlsListener(std::unique_ptr<TcpListener> tcp, SslCtxPtr context, ChannelOptions options)
      : tcp_(std::move(tcp)), context_(std::move(context)), options_(std::move(options)) {}

  Result<std::unique_ptr<Channel>> Accept(Deadline deadline) override {
    for (;;) {
      AcceptWaitingConnections();
      for (size_t i = 0; i < pending_.size();) {
        Result<std::optional<std::unique_ptr<Channel>>> stepped = Step(pending_[i]);
        if (stepped.ok() && !stepped->has_value()) {
          ++i;  // still handshaking
          continue;
        }
        PendingHandshake done = std::move(pending_[i]);
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        if (stepped.ok()) return std::move(**stepped);
        Log("transport", "refused TLS peer " + done.address + ": " + stepped.status().message());
      }
      if (deadline.Expired()) return Status::DeadlineExceeded("no TLS peer completed a handshake on " + address());
      WaitForActivity(deadline);
    }
  }

  std::string address() const override { return "tls" + tcp_->address().substr(3); }

 private:
  struct PendingHandshake {
    SslPtr ssl;
    UniqueFd socket;
    std::string address;
    Deadline deadline;
    bool wants_write = false;
  };

  // Takes every connection the kernel has queued (without waiting) into pending_.
  void AcceptWaitingConnections() {
    for (;;) {
      Result<UniqueFd> socket = tcp_->AcceptSocket(Deadline::Now());
      if (!socket.ok()) {
        if (socket.status().code() != Status::Code::kDeadlineExceeded) Log("transport", socket.status().message());
        return;
      }
      std::string address = DescribePeer(socket->get());
      Result<SslPtr> ssl = NewSsl(context_.get(), socket->get());
      if (!ssl.ok()) {
        Log("transport", "refused TLS peer " + address + ": " + ssl.status().message());
        continue;
      }
      if (pending_.size() >= kMaxPendingHandshakes) {
        Log("transport", "refused TLS peer " + pending_.front().address + ": " + std::to_string(kMaxPendingHandshakes) +
                             " handshakes pending; the oldest makes way");
        pending_.erase(pending_.begin());
      }
      pending_.push_back({std::move(*ssl), std::move(*socket), address, Deadline::After(kHandshakeBudget)});
    }
  }

  // One step of `handshake`: the channel once it completes, nullopt while it needs the peer,
  // an error once it failed or ran out of budget.
  Result<std::optional<std::unique_ptr<Channel>>> Step(PendingHandshake& handshake) {
    SSL* raw = handshake.ssl.get();
    ERR_clear_error();
    int result = SSL_accept(raw);
    if (result == 1) {
      UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<Channel> channel,
                                  ChannelAfterHandshake(context_, std::move(handshake.ssl), std::move(handshake.socket),
                                                        handshake.address, options_));
      return std::optional<std::unique_ptr<Channel>>(std::move(channel));
    }
    int error = SSL_get_error(raw, result);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      if (handshake.deadline.Expired()) return Status::DeadlineExceeded("TLS handshake timed out");
      handshake.wants_write = error == SSL_ERROR_WANT_WRITE;
      return std::optional<std::unique_ptr<Channel>>();
    }
    std::string reason = error == SSL_ERROR_SYSCALL && !ERR_peek_error() ? "connection ended" : TakeOpenSslErrors();
    return Status::Broken(DescribeHandshakeFailure(raw, Status::Broken(reason)));
  }

  // Sleeps until a connection arrives, a pending handshake can move, one's budget ends, or
  // `deadline`.
  void WaitForActivity(Deadline deadline) {
    std::vector<pollfd> fds;
    fds.push_back({tcp_->fd(), POLLIN, 0});
    Deadline wake = deadline;
    for (const PendingHandshake& handshake : pending_) {
      fds.push_back({handshake.socket.get(), static_cast<short>(handshake.wants_write ? POLLOUT : POLLIN), 0});
      wake = wake.Min(handshake.deadline);
    }
    (void)::poll(fds.data(), fds.size(), wake.PollTimeoutMillis());
  }

  std::unique_ptr<TcpListener> tcp_;
  SslCtxPtr context_;
  ChannelOptions options_;
  std::vector<PendingHandshake> pending_;  // oldest first; used only inside Accept
};

}  // namespace

Result<std::unique_ptr<Channel>> DialTls(const std::string& host, uint16_t port, const ChannelOptions& options,
                                         Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(SslCtxPtr context, MakeContext(options.tls, /*server=*/false));
  UNDERSTUDY_ASSIGN_OR_RETURN(UniqueFd socket, ConnectRawTcp(host, port, deadline));
  std::string address = host + ":" + std::to_string(port);
  Result<std::unique_ptr<Channel>> channel = ClientHandshake(std::move(context), std::move(socket), address, options, deadline);
  if (!channel.ok()) return channel.status().WithContext("TLS to " + address);
  return channel;
}

Result<std::unique_ptr<Listener>> ListenTls(const std::string& host, uint16_t port, const ChannelOptions& options) {
  UNDERSTUDY_ASSIGN_OR_RETURN(SslCtxPtr context, MakeContext(options.tls, /*server=*/true));
  ChannelOptions tcp_options = options;
  tcp_options.insecure = true;  // the TCP underneath is wrapped, never used bare
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<TcpListener> tcp, ListenTcp(host, port, tcp_options));
  return std::unique_ptr<Listener>(new TlsListener(std::move(tcp), std::move(context), options));
}

}  // namespace understudy::transport
