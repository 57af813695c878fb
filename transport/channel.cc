#include "transport/channel.h"

#include "transport/rdma_channel.h"
#include "transport/tcp_channel.h"
#include "transport/tls_channel.h"
#include "transport/zmq_channel.h"

namespace understudy::transport {

namespace {

struct Endpoint {
  std::string scheme;
  std::string host;
  uint16_t port = 0;
};

Result<Endpoint> ParseUri(const std::string& uri) {
  size_t scheme_end = uri.find("://");
  size_t colon = uri.rfind(':');
  if (scheme_end == std::string::npos || colon == std::string::npos || colon < scheme_end + 3) {
    return Status::InvalidArgument("channel address '" + uri + "' is not scheme://host:port");
  }
  Endpoint endpoint;
  endpoint.scheme = uri.substr(0, scheme_end);
  endpoint.host = uri.substr(scheme_end + 3, colon - scheme_end - 3);
  std::string port = uri.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return Status::InvalidArgument("channel address '" + uri + "' has a bad port");
  }
  endpoint.port = static_cast<uint16_t>(std::stoul(port));
  return endpoint;
}

Status CheckScheme(const Endpoint& endpoint, const ChannelOptions& options, const std::string& uri) {
  if (endpoint.scheme == "tls" || endpoint.scheme == "zmq+curve") return Status::Ok();
  if (endpoint.scheme == "tcp" || endpoint.scheme == "rdma") {
    if (!options.insecure) {
      return Status::InvalidArgument("'" + uri + "' is unencrypted and unauthenticated (" + endpoint.scheme +
                                     "); set insecure: true to allow it");
    }
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown channel scheme '" + endpoint.scheme + "' in '" + uri + "'");
}

ZmqCurveOptions CurveFrom(const ChannelOptions& options) {
  ZmqCurveOptions curve;
  curve.server_public_key = options.curve.server_public_key;
  curve.server_secret_key = options.curve.server_secret_key;
  curve.allowed_client_keys = options.curve.allowed_client_keys;
  curve.client_public_key = options.curve.client_public_key;
  curve.client_secret_key = options.curve.client_secret_key;
  curve.heartbeat_timeout_ms = options.curve.heartbeat_timeout_ms;
  return curve;
}

}  // namespace

Result<std::unique_ptr<Channel>> Dial(const std::string& uri, const ChannelOptions& options, Deadline deadline) {
  UNDERSTUDY_ASSIGN_OR_RETURN(Endpoint endpoint, ParseUri(uri));
  UNDERSTUDY_RETURN_IF_ERROR(CheckScheme(endpoint, options, uri));
  if (endpoint.scheme == "tls") return DialTls(endpoint.host, endpoint.port, options, deadline);
  if (endpoint.scheme == "rdma") return DialRdma(endpoint.host, endpoint.port, options, deadline);
  if (endpoint.scheme == "zmq+curve") return DialZmqCurve(endpoint.host, endpoint.port, CurveFrom(options), options, deadline);
  return DialTcp(endpoint.host, endpoint.port, options, deadline);
}

Result<std::unique_ptr<Listener>> Listen(const std::string& uri, const ChannelOptions& options) {
  UNDERSTUDY_ASSIGN_OR_RETURN(Endpoint endpoint, ParseUri(uri));
  UNDERSTUDY_RETURN_IF_ERROR(CheckScheme(endpoint, options, uri));
  if (endpoint.scheme == "tls") return ListenTls(endpoint.host, endpoint.port, options);
  if (endpoint.scheme == "rdma") return ListenRdma(endpoint.host, endpoint.port, options);
  if (endpoint.scheme == "zmq+curve") return ListenZmqCurve(endpoint.host, endpoint.port, CurveFrom(options), options);
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<TcpListener> listener, ListenTcp(endpoint.host, endpoint.port, options));
  return std::unique_ptr<Listener>(std::move(listener));
}

}  // namespace understudy::transport
