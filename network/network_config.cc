#include "network/network_config.h"

#include "common/json_fields.h"

namespace understudy::network {

Result<std::optional<NetworkConfig>> NetworkConfig::FromJson(const nlohmann::json& agent_config) {
  if (!agent_config.contains("network")) return std::optional<NetworkConfig>();
  const nlohmann::json& section = agent_config["network"];
  if (!section.is_object()) return Status::InvalidArgument("\"network\" must be an object");
  NetworkConfig config;
  UNDERSTUDY_ASSIGN_OR_RETURN(config.tap, RequireString(section, "tap", "network"));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.netns, OptionalString(section, "netns", "", "network"));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.mac, OptionalString(section, "mac", "", "network"));
  return std::optional<NetworkConfig>(std::move(config));
}

}  // namespace understudy::network
