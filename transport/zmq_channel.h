// ZmqChannel: the Channel over ZeroMQ (libzmq >= 4.3, ZMTP 3.1) with CURVE encryption and
// authentication. URI scheme: zmq+curve://host:port.
//
// Security. The server (ListenZmqCurve) owns a CURVE keypair and an allow-list of client
// public keys. A ZAP handler (a thread serving inproc://zeromq.zap.01 in the listener's own
// ZeroMQ context) admits a connection only if its key is on the list, and logs each refusal:
//   transport: refused CURVE client <z85 key>: not in the allow-list
// The client (DialZmqCurve) owns its keypair and knows the server's public key, so both ends
// are authenticated and every frame is encrypted (XSalsa20-Poly1305). peer_identity() is the
// peer's z85 public key: the client's as the ZAP handler admitted it (ZeroMQ's "User-Id"), on
// the server; the server's, which the handshake proved, on the client.
//
// Socket pattern: ZMQ_PAIR at both ends. A channel is one ordered 1:1 pipe and PAIR is exactly
// that: no routing frames, and libzmq itself refuses to attach a second peer to a socket that
// has one. What PAIR lacks, ZeroMQ provides elsewhere: ZAP authenticates every connection
// whatever the socket type, and a socket monitor reports the connection's end.
// (ROUTER/DEALER would let several authenticated clients share the server socket, which a
// 1:1 channel must then refuse by hand, and ROUTER cannot drop one peer in stable libzmq.)
//
// Pairs are 1:1. Accept returns a Channel for the first authenticated peer and hands it the
// bound socket; from then on the listener's ZAP handler turns every other client away
// ("this listener's channel already has its peer", ZAP status 300: libzmq 4.3 then answers
// that connection nothing more until its handshake times out, and the client retries until
// its deadline). Accept while that channel is still alive is kFailedPrecondition; once the
// channel is destroyed, the next Accept binds the same address again, and admits clients from
// the moment that socket is bound (each bound socket has its own ZAP domain, so a socket libzmq
// still closes never admits anybody). Until Accept picks its peer, every allow-listed client is
// admitted; if two finish the handshake, Accept ends every connection but the one it picked
// (it shuts down the TCP socket libzmq accepted for it), so the loser's channel reports
// kBroken at once instead of staying attached to nothing.
//
// Clean close versus broken. ZeroMQ hides TCP connections, so the end is made explicit:
//   * Close() sends an end-of-stream frame and waits until libzmq has written it and the
//     peer's kernel has acknowledged it; the peer's Receive then returns kPeerClosed.
//   * A peer that goes away without it is kBroken. A socket monitor reports the connection's
//     end (ZMQ_EVENT_DISCONNECTED): a killed peer process (the kernel closes its socket) is
//     noticed within milliseconds; a hung or unreachable peer through ZMTP heartbeats, after
//     heartbeat_interval_ms + heartbeat_timeout_ms at most (100 + 300 ms by default). Messages
//     that arrived before the end are still delivered first, in order.
//
// Message path and its cost. Send copies the parts into ZeroMQ frames of at most
// kMaxFrameBytes (parts are packed together, never joined into one buffer of the whole
// message) and returns once libzmq has queued the whole message. It cannot lend the caller's
// buffers to libzmq instead (zmq_msg_init_data): libzmq's CURVE encoder copies each frame into
// a plaintext buffer and encrypts that into a new one anyway (curve_encoding_t::encode), so
// lending would save one of three passes over the bytes, yet Send would then have to wait for
// libzmq's I/O thread to encrypt the whole message and, on a deadline, tear the socket down to
// get its buffers back. Receive copies the frames into the caller's vector (its capacity is
// reused).
//
// Deadlines. Every blocking call waits with poll(2) on the ZeroMQ sockets' notification
// descriptors (ZMQ_FD, what zmq_poll uses inside) for at most the deadline's remaining time,
// and returns kDeadlineExceeded after it. Dial retries refused or dropped connections until its
// deadline; a server that refuses the client's key (ZAP status 400) fails it at once with
// kFailedPrecondition.
//
// Sizes. ChannelOptions::max_message_bytes caps a message: Send refuses larger ones with
// kInvalidArgument; Receive rejects them with kCorruption before copying. libzmq also enforces
// it per frame (ZMQ_MAXMSGSIZE, before allocating): a peer that sends a frame larger than
// min(max_message_bytes + 1, kMaxFrameBytes) + CURVE overhead (but at least
// kMinimumFrameLimit, room for the handshake) is disconnected by libzmq, which the receiver
// sees as kBroken, not kCorruption.
//
// Buffering. Unread incoming messages are queued without limit (ZMQ_RCVHWM 0): libzmq stops
// reading a connection whose receive queue is full, and would then miss the peer's heartbeats
// and drop a healthy but slow connection. Memory is bounded by the replication protocol (the
// primary keeps at most max_in_flight unacknowledged checkpoints), not by the channel. Outgoing
// messages queue up to kSendQueueMessages before Send waits.
//
// Thread safety: as Channel: one thread may Send (or Close) while another Receives; ZeroMQ
// sockets are not thread-safe, so the two take turns on them under a mutex and never hold it
// while waiting. A Listener is used by one thread at a time. Every object here owns its ZeroMQ
// context (a dialled channel) or shares its listener's (an accepted channel), so destroying the
// last of them releases every thread and descriptor ZeroMQ opened for it.
#ifndef UNDERSTUDY_TRANSPORT_ZMQ_CHANNEL_H_
#define UNDERSTUDY_TRANSPORT_ZMQ_CHANNEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/result.h"
#include "transport/channel.h"

namespace understudy::transport {

// Wire format, version 1, carried inside CURVE-encrypted ZMTP 3.1 frames.
//
// A Channel message is one ZeroMQ multipart message of one or more frames. The first byte of
// frame 0 is its kind; the payload is the rest of frame 0 followed by every later frame, in
// order. No frame is larger than kMaxFrameBytes.
//   'H' hello          client to server, exactly once, right after the handshake; payload is
//                      kZmqHelloPayload (names the format version). Accept drops a peer whose
//                      first message is anything else.
//   'D' data           one Channel message; the payload is the message and may be empty.
//   'E' end of stream  sent by Close(); empty payload. The peer's Receive returns kPeerClosed.
// Example: Send({"abc", "de"}) is one frame, the 6 bytes "Dabcde". A 3 MiB message is frames
// of 1 MiB, 1 MiB, 1 MiB and 1 byte (1 kind byte + 3 MiB of payload).
inline constexpr size_t kMaxFrameBytes = 1u << 20;
inline constexpr std::byte kZmqHelloKind{'H'};
inline constexpr std::byte kZmqDataKind{'D'};
inline constexpr std::byte kZmqEndOfStreamKind{'E'};
inline constexpr std::string_view kZmqHelloPayload = "understudy-zmq/1";
// The smallest per-frame limit handed to libzmq, whatever max_message_bytes says: the CURVE
// handshake's commands pass the same ZMQ_MAXMSGSIZE check.
inline constexpr int64_t kMinimumFrameLimit = 4096;
// Outgoing messages libzmq may hold for a peer before Send waits (ZMQ_SNDHWM; counts whole
// messages, not bytes).
inline constexpr int kSendQueueMessages = 16;

// CURVE keys are Z85 text, 40 characters for 32 bytes (ZeroMQ RFC 32).
struct ZmqCurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// A fresh keypair from libsodium's random source, for tests and key-generation tools.
Result<ZmqCurveKeyPair> GenerateZmqCurveKeyPair();

struct ZmqCurveOptions {
  // The server's keypair. Listen needs both; Dial needs server_public_key only (it is how the
  // client knows it talks to the right server).
  std::string server_public_key;
  std::string server_secret_key;
  // Listen: the client public keys admitted. Empty admits nobody.
  std::vector<std::string> allowed_client_keys;

  // The client's keypair: Dial needs both; its public key must be on the server's allow-list.
  std::string client_public_key;
  std::string client_secret_key;

  // ZMTP heartbeats (ZMQ_HEARTBEAT_IVL / ZMQ_HEARTBEAT_TIMEOUT) detect a peer that is hung or
  // cut off without its socket being closed: each end PINGs every interval, and drops a
  // connection from which nothing arrives for heartbeat_timeout_ms after a PING, so detection
  // takes at most interval + timeout (measured: 400 ms with the defaults).
  // Shorter means faster failover, but a false kBroken is a needless failover. A PING travels
  // in-band, behind every byte already queued in both ends' socket buffers, and the answer
  // needs the peer's ZeroMQ I/O thread to decrypt all of that first; a thread starved of CPU
  // also runs its expired timers before it reads what is waiting. So the timeout must exceed
  // the time to drain those buffers at link speed (roughly 10 MB: 80 ms at 1 Gbit/s, 0.8 s at
  // 100 Mbit/s) plus the worst scheduling delay. Measured with the 300 ms default, 64 MiB
  // messages between two processes on a 2-core machine: never tripped when idle; tripped by a
  // few percent of transfers with the CPU saturated by busy loops, and by every one under
  // ThreadSanitizer's tenfold slowdown. Raise it on slow links or busy hosts.
  int heartbeat_interval_ms = 100;
  int heartbeat_timeout_ms = 300;
};

// Connects to host:port (host: an IPv4 address or a resolvable name) and completes the CURVE
// handshake. Retries refused and dropped connections (the server may be starting, or still
// busy with its previous peer) until the deadline: kDeadlineExceeded then, naming the last
// failure. kFailedPrecondition when the server refuses this client's key. kInvalidArgument for
// missing or malformed keys, or a client public key that does not match its secret key.
Result<std::unique_ptr<Channel>> DialZmqCurve(const std::string& host, uint16_t port, const ZmqCurveOptions& curve,
                                              const ChannelOptions& options, Deadline deadline);

// Binds host:port (port 0: any free port; address() then says which) and starts the ZAP
// handler. kInvalidArgument for missing or malformed keys (server keypair, allow-list);
// kIOError if the address cannot be bound.
Result<std::unique_ptr<Listener>> ListenZmqCurve(const std::string& host, uint16_t port, const ZmqCurveOptions& curve,
                                                 const ChannelOptions& options);

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_ZMQ_CHANNEL_H_
