// PrimaryBinding: the one VM, and the primaries, this secondary protects — named by this
// host's own configuration, never learnt from a peer (issue 16, item 2).
//
//   "vm": "canary1"                 the VM's name: a primary's hello must name it, the first
//                                   checkpoint's machine definition must describe it, and the
//                                   VM's ownership record (etcd key) is derived from it
//   the primary's identity          the transport's own pin: tls:// "peer_name" (the name the
//                                   primary's certificate must carry; required unless every
//                                   address is loopback), zmq+curve:// "allowed_client_keys"
//                                   (the primaries' CURVE public keys). tcp:// ("insecure")
//                                   authenticates nobody and binds no identity.
//
// The transport already refuses a peer that fails its pin during the handshake; CheckHello
// holds the channel's proved identity to the same list again, so a listener built with other
// options can never let another primary in.
//
// Thread safety: a value; const methods from any thread.
#ifndef UNDERSTUDY_SECONDARY_PRIMARY_BINDING_H_
#define UNDERSTUDY_SECONDARY_PRIMARY_BINDING_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "replication/agent_protocol.h"
#include "transport/channel.h"

namespace understudy::secondary {

struct PrimaryBinding {
  std::string vm;
  // The identities a primary's channel may have proved (Channel::authenticated_identity).
  // Empty: the transport authenticates nobody (tcp://).
  std::vector<std::string> identities;

  // From the secondary's configuration object, its "listen" URI and transport options.
  // `other_uris` are the other tls:// addresses this host uses (e.g. "reprotect"): TLS across
  // hosts needs "peer_name". kInvalidArgument naming the field otherwise.
  static Result<PrimaryBinding> FromConfig(const nlohmann::json& config, const std::string& listen_uri,
                                           const transport::ChannelOptions& channel,
                                           const std::vector<std::string>& other_uris);

  // OK when `hello`, received on `channel`, comes from a bound primary for this VM; otherwise
  // kFailedPrecondition naming what was wrong (the VM it named, the identity it proved) and
  // where (the channel's peer).
  Status CheckHello(const replication::Hello& hello, const transport::Channel& channel) const;

  // OK when a first checkpoint's machine definition, named `name`, describes this VM.
  Status CheckDefinitionName(const std::string& name) const;
};

}  // namespace understudy::secondary

#endif  // UNDERSTUDY_SECONDARY_PRIMARY_BINDING_H_
