// ChannelOptions from an agent's JSON configuration:
//
//   "insecure": false,                     must be true to allow tcp:// (plaintext)
//   "tls": {                               for tls:// (mutual X.509, TLS 1.3)
//     "ca": "/etc/understudy/ca.pem",
//     "cert": "/etc/understudy/host1.pem",
//     "key": "/etc/understudy/host1.key",
//     "peer_name": "host2"                 the peer's certificate must name it; required unless
//                                          every address is loopback (RequirePeerNameAcrossHosts)
//   },
//   "curve": {                             for zmq+curve:// (Z85 keys)
//     "server_public_key": ..., "server_secret_key": ...,   the listener's keypair
//     "allowed_client_keys": [...],                         who may connect to it
//     "client_public_key": ..., "client_secret_key": ...,   the dialer's keypair
//     "heartbeat_timeout_ms": 1000
//   }
//
// deploy/make-certs.sh creates such files for a first installation.
#ifndef UNDERSTUDY_TRANSPORT_CHANNEL_CONFIG_H_
#define UNDERSTUDY_TRANSPORT_CHANNEL_CONFIG_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "transport/channel.h"

namespace understudy::transport {

// Reads the transport fields of an agent's configuration object (absent fields: defaults).
Result<ChannelOptions> ChannelOptionsFromJson(const nlohmann::json& config);

// Whether a channel URI's host is on loopback (127.0.0.0/8, "localhost", "::1").
bool IsLoopbackUri(const std::string& uri);

// tls:// between hosts authenticates the peer only as "someone the CA signed" unless the
// peer's name is pinned: kInvalidArgument, naming the address and the field, for a tls://
// URI in `uris` that is not on loopback while "tls": {"peer_name"} is empty. Other schemes
// pass (zmq+curve:// pins keys, tcp:// is refused elsewhere unless "insecure").
Status RequirePeerNameAcrossHosts(const std::vector<std::string>& uris, const ChannelOptions& options);

}  // namespace understudy::transport

#endif  // UNDERSTUDY_TRANSPORT_CHANNEL_CONFIG_H_
