// TlsChannel: the Channel over TLS 1.3 on TCP, with mutual X.509 authentication (OpenSSL 3).
//
// Both sides present a certificate signed by the configured CA and verify the other's; with
// `expected_peer_name` set, the peer's certificate must also name that host (SAN or CN) —
// certificate pinning by name. Nothing older than TLS 1.3 is offered or accepted.
//
// Framing inside the TLS stream is TcpChannel's (transport/frame_assembler.h): a 4-byte
// length word and the payload; a Receive whose deadline expires mid-message keeps what
// arrived and the next Receive continues it. Small parts of a scatter-gather message
// are coalesced into one TLS record; large parts are written straight from the caller's
// buffer (no copy into one big buffer).
//
// A listener refuses peers that fail the handshake — no certificate, a certificate from
// another CA, an expired one, a name that does not match the pin, plaintext on a TLS port —
// with one log line naming the peer and the reason, and keeps waiting for a valid peer.
//
// OpenSSL writes with write(2): the first TLS channel makes the process ignore SIGPIPE
// (unless it has its own handler), so a dead peer is an error, not a killed agent.
#ifndef UNDERSTUDY_TRANSPORT_TLS_CHANNEL_H_
#define UNDERSTUDY_TRANSPORT_TLS_CHANNEL_H_

#include <memory>
#include <string>

#include "transport/channel.h"

namespace understudy::transport {

Result<std::unique_ptr<Channel>> DialTls(const std::string& host, uint16_t port, const ChannelOptions& options,
                                         Deadline deadline);
Result<std::unique_ptr<Listener>> ListenTls(const std::string& host, uint16_t port, const ChannelOptions& options);

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_TLS_CHANNEL_H_
