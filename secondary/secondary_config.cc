#include "secondary/secondary_config.h"

#include "common/json_fields.h"
#include "common/json_file.h"
#include "transport/channel_config.h"

namespace understudy::secondary {

Result<SecondaryConfig> SecondaryConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return Status::InvalidArgument("the configuration must be a JSON object");
  SecondaryConfig config;
  constexpr std::string_view where = "configuration";
  UNDERSTUDY_ASSIGN_OR_RETURN(config.listen_uri, RequireString(json, "listen", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.runtime_dir, RequireString(json, "runtime_dir", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.qemu_binary, OptionalString(json, "qemu_binary", config.qemu_binary, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.metrics_listen, OptionalString(json, "metrics_listen", config.metrics_listen, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.verify_period_ms,
                              OptionalUint32(json, "verify_period_ms", config.verify_period_ms, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.disk_image, OptionalString(json, "disk_image", config.disk_image, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.vm_policy.image_dir, OptionalString(json, "image_dir", "", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.vm_policy.max_memory_mib,
                              OptionalUint32(json, "max_memory_mib", config.vm_policy.max_memory_mib, where));
  if (config.vm_policy.max_memory_mib == 0) return Status::InvalidArgument("max_memory_mib must be positive");
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* test_only, OptionalObject(json, "test_only", where));
  if (test_only) {
    constexpr std::string_view test_where = "configuration: test_only";
    UNDERSTUDY_ASSIGN_OR_RETURN(config.test_ack_delay_ms, OptionalUint32(*test_only, "ack_delay_ms", 0, test_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(config.test_apply_disk_writes_on_arrival,
                                OptionalBool(*test_only, "apply_disk_writes_on_arrival", false, test_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(config.test_stall_disk_apply_at_epoch,
                                OptionalUint64(*test_only, "stall_disk_apply_at_epoch", 0, test_where));
    UNDERSTUDY_ASSIGN_OR_RETURN(config.test_control_commands,
                                OptionalBool(*test_only, "control_commands", false, test_where));
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(config.network, network::NetworkConfig::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.channel, transport::ChannelOptionsFromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.failover, failover::FailoverConfig::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.reprotect, primary::ReprotectConfig::FromJson(json, config.channel));
  std::vector<std::string> other_uris;
  if (config.reprotect) other_uris.push_back(config.reprotect->secondary_uri);
  UNDERSTUDY_ASSIGN_OR_RETURN(config.binding, PrimaryBinding::FromConfig(json, config.listen_uri, config.channel, other_uris));
  return config;
}

Result<SecondaryConfig> SecondaryConfig::Load(const std::string& path) {
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  Result<SecondaryConfig> config = FromJson(json);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace understudy::secondary
