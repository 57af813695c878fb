#include "transport/channel_config.h"

namespace understudy::transport {

Result<ChannelOptions> ChannelOptionsFromJson(const nlohmann::json& config) {
  ChannelOptions options;
  try {
    options.insecure = config.value("insecure", false);
    if (config.contains("tls")) {
      const nlohmann::json& tls = config["tls"];
      options.tls.ca_file = tls.value("ca", "");
      options.tls.cert_file = tls.value("cert", "");
      options.tls.key_file = tls.value("key", "");
      options.tls.expected_peer_name = tls.value("peer_name", "");
    }
    if (config.contains("curve")) {
      const nlohmann::json& curve = config["curve"];
      options.curve.server_public_key = curve.value("server_public_key", "");
      options.curve.server_secret_key = curve.value("server_secret_key", "");
      options.curve.client_public_key = curve.value("client_public_key", "");
      options.curve.client_secret_key = curve.value("client_secret_key", "");
      options.curve.allowed_client_keys = curve.value("allowed_client_keys", std::vector<std::string>{});
      options.curve.heartbeat_timeout_ms = curve.value("heartbeat_timeout_ms", options.curve.heartbeat_timeout_ms);
    }
  } catch (const nlohmann::json::exception& error) {
    return Status::InvalidArgument(std::string("transport configuration: ") + error.what());
  }
  return options;
}

}  // namespace understudy::transport
