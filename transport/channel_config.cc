#include "transport/channel_config.h"

#include "common/json_fields.h"

namespace understudy::transport {

Result<ChannelOptions> ChannelOptionsFromJson(const nlohmann::json& config) {
  ChannelOptions options;
  constexpr std::string_view where = "transport configuration";
  UNDERSTUDY_ASSIGN_OR_RETURN(options.insecure, OptionalBool(config, "insecure", false, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* tls, OptionalObject(config, "tls", where));
  if (tls) {
    constexpr std::string_view tls_where = "transport configuration: tls";
    UNDERSTUDY_ASSIGN_OR_RETURN(options.tls.ca_file, OptionalString(*tls, "ca", "", tls_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.tls.cert_file, OptionalString(*tls, "cert", "", tls_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.tls.key_file, OptionalString(*tls, "key", "", tls_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.tls.expected_peer_name, OptionalString(*tls, "peer_name", "", tls_where));
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* curve, OptionalObject(config, "curve", where));
  if (curve) {
    constexpr std::string_view curve_where = "transport configuration: curve";
    UNDERSTUDY_ASSIGN_OR_RETURN(options.curve.server_public_key, OptionalString(*curve, "server_public_key", "", curve_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.curve.server_secret_key, OptionalString(*curve, "server_secret_key", "", curve_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.curve.client_public_key, OptionalString(*curve, "client_public_key", "", curve_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.curve.client_secret_key, OptionalString(*curve, "client_secret_key", "", curve_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(options.curve.allowed_client_keys, OptionalStringArray(*curve, "allowed_client_keys", curve_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(
        uint32_t heartbeat_timeout_ms,
        OptionalUint32(*curve, "heartbeat_timeout_ms", static_cast<uint32_t>(options.curve.heartbeat_timeout_ms), curve_where));
    if (heartbeat_timeout_ms > 3600000) return Status::InvalidArgument("curve.heartbeat_timeout_ms is over an hour");
    options.curve.heartbeat_timeout_ms = static_cast<int>(heartbeat_timeout_ms);
  }
  return options;
}

bool IsLoopbackUri(const std::string& uri) {
  size_t scheme_end = uri.find("://");
  size_t colon = uri.rfind(':');
  if (scheme_end == std::string::npos || colon == std::string::npos || colon < scheme_end + 3) return false;
  std::string host = uri.substr(scheme_end + 3, colon - scheme_end - 3);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "::1";
}

Status RequirePeerNameAcrossHosts(const std::vector<std::string>& uris, const ChannelOptions& options) {
  if (!options.tls.expected_peer_name.empty()) return Status::Ok();
  for (const std::string& uri : uris) {
    if (uri.rfind("tls://", 0) != 0 || IsLoopbackUri(uri)) continue;
    return Status::InvalidArgument("'" + uri + "' is tls:// across hosts: \"tls\": {\"peer_name\"} must name the peer's "
                                   "certificate (any certificate of the CA would be accepted otherwise)");
  }
  return Status::Ok();
}

}  // namespace understudy::transport
