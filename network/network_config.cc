#include "network/network_config.h"

namespace understudy::network {

Result<std::optional<NetworkConfig>> NetworkConfig::FromJson(const nlohmann::json& agent_config) {
  if (!agent_config.contains("network")) return std::optional<NetworkConfig>();
  const nlohmann::json& section = agent_config["network"];
  if (!section.is_object()) return Status::InvalidArgument("\"network\" must be an object");
  NetworkConfig config;
  try {
    config.tap = section.at("tap").get<std::string>();
    config.netns = section.value("netns", "");
    config.mac = section.value("mac", "");
  } catch (const nlohmann::json::exception& error) {
    return Status::InvalidArgument(std::string("network: ") + error.what());
  }
  return std::optional<NetworkConfig>(std::move(config));
}

}  // namespace understudy::network
