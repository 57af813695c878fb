// Channel: an ordered, framed, bidirectional message pipe between two Understudy agents.
//
// Every transport (plain TCP for tests, TLS 1.3, ZeroMQ with CURVE, RDMA) implements this
// interface; the agents never see which one they use. A message is an opaque byte string:
// transport/ never parses a checkpoint.
//
//  * Send takes the message as a list of parts (scatter-gather), so page payloads are not
//    copied into one big buffer first.
//  * Every blocking call takes a Deadline and returns kDeadlineExceeded instead of hanging.
//  * The end of a conversation is explicit: Close() sends an end-of-stream marker, and the
//    peer's Receive returns kPeerClosed. A connection that dies without it — process killed,
//    cable cut — is kBroken. Agents treat the two very differently (a clean goodbye never
//    triggers a failover).
//
// Thread safety: one thread may Send while another Receives; two concurrent Sends (or two
// Receives) are not allowed.
#ifndef UNDERSTUDY_TRANSPORT_CHANNEL_H_
#define UNDERSTUDY_TRANSPORT_CHANNEL_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "common/status.h"

namespace understudy::transport {

using MessagePart = std::span<const std::byte>;

class Channel {
 public:
  virtual ~Channel() = default;

  // Sends the concatenation of `parts` as one message. kBroken if the connection is gone.
  // A Send that fails once it has started (deadline, broken peer) may have put part of a
  // message on the wire: the channel is then unusable for sending, and every later Send
  // returns kBroken rather than corrupt the stream.
  virtual Status Send(std::span<const MessagePart> parts, Deadline deadline) = 0;
  Status Send(MessagePart message, Deadline deadline) { return Send(std::span<const MessagePart>(&message, 1), deadline); }

  // Receives the next message into `message` (replacing its contents; its capacity is
  // reused). kPeerClosed after the peer's Close(), kBroken if the connection died,
  // kCorruption for a malformed frame (the connection is then unusable).
  virtual Status Receive(std::vector<std::byte>& message, Deadline deadline) = 0;

  // Ends the conversation cleanly: the peer's next Receive returns kPeerClosed.
  virtual Status Close(Deadline deadline) = 0;

  // Who the peer proved to be during the handshake (certificate subject, CURVE key); for
  // plain TCP, its address.
  virtual const std::string& peer_identity() const = 0;

  // The identity the handshake proved, for binding checks (secondary/primary_binding.h): the
  // pinned name the peer's certificate matched (tls://, or its subject CN when nothing is
  // pinned), the peer's CURVE public key in Z85 (zmq+curve://). Empty when the transport
  // authenticates nobody (tcp://, rdma://).
  virtual std::string authenticated_identity() const { return {}; }
};

class Listener {
 public:
  virtual ~Listener() = default;
  // Waits until the deadline for the next peer. Peers that fail the handshake are refused and
  // logged, and Accept keeps waiting. Handshakes that are still under way at the deadline go
  // on in the next Accept call (each has its own budget), so callers may poll with short
  // deadlines; an idle or slow peer never delays another one.
  virtual Result<std::unique_ptr<Channel>> Accept(Deadline deadline) = 0;
  // The address actually bound, e.g. "tcp://127.0.0.1:40123" when port 0 was asked for.
  virtual std::string address() const = 0;
};

// tls:// — PEM files. Mutual authentication: both sides need all three.
struct TlsOptions {
  std::string ca_file;    // the CA both peers' certificates must chain to
  std::string cert_file;  // this side's certificate
  std::string key_file;   // this side's private key
  // When set, the peer's certificate must name this host (subjectAltName or CN).
  std::string expected_peer_name;
  // TLS 1.3 cipher suites in preference order, OpenSSL's syntax. Empty (always, in production:
  // configuration files cannot set it): AES-128-GCM, then AES-256-GCM, then ChaCha20-Poly1305.
  // For benchmarks that compare ciphers.
  std::string ciphersuites;
};

// zmq+curve:// — Z85 keys (40 characters each; `ftctl`-free: see transport/zmq_channel.h
// GenerateZmqCurveKeyPair). The listener needs its keypair and the clients it admits; the
// dialer its keypair and the listener's public key.
struct CurveOptions {
  std::string server_public_key;
  std::string server_secret_key;
  std::vector<std::string> allowed_client_keys;
  std::string client_public_key;
  std::string client_secret_key;
  // Silence on the link before the peer counts as gone; generous, because a false "gone" is
  // a needless failover (zmq_channel.h explains the sizing).
  int heartbeat_timeout_ms = 1000;
};

struct ChannelOptions {
  // Plain TCP carries checkpoints unencrypted and unauthenticated: refused unless set.
  bool insecure = false;
  // Messages larger than this are refused before anything is allocated.
  size_t max_message_bytes = 1ull << 30;
  TlsOptions tls;
  CurveOptions curve;
};

// Connects to `uri` ("tcp://host:port", ...). kInvalidArgument for an unknown scheme or an
// insecure scheme without options.insecure.
Result<std::unique_ptr<Channel>> Dial(const std::string& uri, const ChannelOptions& options, Deadline deadline);
Result<std::unique_ptr<Listener>> Listen(const std::string& uri, const ChannelOptions& options);

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_CHANNEL_H_
