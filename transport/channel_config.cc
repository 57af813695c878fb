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
  } catch (const nlohmann::json::exception& error) {
    return Status::InvalidArgument(std::string("transport configuration: ") + error.what());
  }
  return options;
}

}  // namespace understudy::transport
