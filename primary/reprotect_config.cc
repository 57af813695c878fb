#include "primary/reprotect_config.h"

#include "common/json_fields.h"
#include "transport/channel_config.h"

namespace understudy::primary {

Result<std::optional<ReprotectConfig>> ReprotectConfig::FromJson(const nlohmann::json& agent_config,
                                                                  const transport::ChannelOptions& agent_channel) {
  if (!agent_config.contains("reprotect")) return std::optional<ReprotectConfig>();
  const nlohmann::json& section = agent_config["reprotect"];
  if (!section.is_object()) return Status::InvalidArgument("\"reprotect\" must be an object");
  ReprotectConfig config;
  UNDERSTUDY_ASSIGN_OR_RETURN(config.secondary_uri, RequireString(section, "secondary", "reprotect"));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.checkpoint_interval_ms,
                              OptionalUint32(section, "checkpoint_interval_ms", config.checkpoint_interval_ms, "reprotect"));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.max_in_flight, OptionalUint32(section, "max_in_flight", config.max_in_flight, "reprotect"));
  if (section.contains("tls") || section.contains("curve") || section.contains("insecure")) {
    UNDERSTUDY_ASSIGN_OR_RETURN(config.channel, transport::ChannelOptionsFromJson(section));
  } else {
    config.channel = agent_channel;
  }
  return std::optional<ReprotectConfig>(std::move(config));
}

}  // namespace understudy::primary
