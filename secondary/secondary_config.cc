#include "secondary/secondary_config.h"

#include "common/json_file.h"
#include "transport/channel_config.h"

namespace understudy::secondary {

Result<SecondaryConfig> SecondaryConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return Status::InvalidArgument("the configuration must be a JSON object");
  SecondaryConfig config;
  try {
    config.listen_uri = json.at("listen").get<std::string>();
    config.runtime_dir = json.at("runtime_dir").get<std::string>();
    config.qemu_binary = json.value("qemu_binary", config.qemu_binary);
    config.metrics_listen = json.value("metrics_listen", config.metrics_listen);
    config.verify_period_ms = json.value("verify_period_ms", config.verify_period_ms);
    config.disk_image = json.value("disk_image", config.disk_image);
    if (json.contains("test_only")) {
      const nlohmann::json& test_only = json["test_only"];
      config.test_ack_delay_ms = test_only.value("ack_delay_ms", 0u);
      config.test_apply_disk_writes_on_arrival = test_only.value("apply_disk_writes_on_arrival", false);
      config.test_stall_disk_apply_at_epoch = test_only.value("stall_disk_apply_at_epoch", uint64_t{0});
      config.test_control_commands = test_only.value("control_commands", false);
    }
  } catch (const nlohmann::json::exception& error) {
    return Status::InvalidArgument(std::string("configuration: ") + error.what());
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(config.network, network::NetworkConfig::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.channel, transport::ChannelOptionsFromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.failover, failover::FailoverConfig::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.reprotect, failover::ReprotectConfig::FromJson(json, config.channel));
  return config;
}

Result<SecondaryConfig> SecondaryConfig::Load(const std::string& path) {
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  Result<SecondaryConfig> config = FromJson(json);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace understudy::secondary
