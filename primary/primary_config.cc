#include "primary/primary_config.h"

#include "common/json_file.h"
#include "transport/channel_config.h"

namespace understudy::primary {

Result<PrimaryConfig> PrimaryConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return Status::InvalidArgument("the configuration must be a JSON object");
  PrimaryConfig config;
  if (!json.contains("vm")) return Status::InvalidArgument("configuration lacks \"vm\"");
  Result<qemu::VmDefinition> vm = qemu::VmDefinition::FromJson(json["vm"]);
  if (!vm.ok()) return vm.status().WithContext("\"vm\"");
  config.vm = std::move(*vm);
  try {
    config.secondary_uri = json.at("secondary").get<std::string>();
    config.runtime_dir = json.at("runtime_dir").get<std::string>();
    config.checkpoint_interval_ms = json.value("checkpoint_interval_ms", config.checkpoint_interval_ms);
    config.max_in_flight = json.value("max_in_flight", config.max_in_flight);
    config.boot_timeout_ms = json.value("boot_timeout_ms", config.boot_timeout_ms);
    config.qemu_binary = json.value("qemu_binary", config.qemu_binary);
    config.metrics_listen = json.value("metrics_listen", config.metrics_listen);
    config.disk_image = json.value("disk_image", config.disk_image);
    config.disk_sync_bytes_per_checkpoint = json.value("disk_sync_mib_per_checkpoint", uint64_t{8}) << 20;
    if (config.disk_sync_bytes_per_checkpoint == 0) return Status::InvalidArgument("disk_sync_mib_per_checkpoint must be at least 1");
    config.qemu_extra_args = json.value("qemu_extra_args", config.qemu_extra_args);
    if (json.contains("attach")) {
      config.attach = AttachConfig{json["attach"].at("qmp").get<std::string>(),
                                   json["attach"].at("serial").get<std::string>()};
    }
    if (json.contains("test_only")) {
      config.test_ship_disk_writes_early = json["test_only"].value("ship_disk_writes_early", false);
      config.test_network_output_commit_off = json["test_only"].value("network_output_commit_off", false);
      config.test_control_commands = json["test_only"].value("control_commands", false);
      config.test_drop_page_at_epoch = json["test_only"].value("drop_page_at_epoch", uint64_t{0});
      config.test_hold_checkpoint_at_epoch = json["test_only"].value("hold_checkpoint_at_epoch", uint64_t{0});
    }
    if (json.contains("test_only") && json["test_only"].contains("corrupt_epoch")) {
      config.test_corrupt_epoch = json["test_only"]["corrupt_epoch"].get<uint64_t>();
    }
  } catch (const nlohmann::json::exception& error) {
    return Status::InvalidArgument(std::string("configuration: ") + error.what());
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(config.network, network::NetworkConfig::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.channel, transport::ChannelOptionsFromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.failover, failover::FailoverConfig::FromJson(json));
  if (config.max_in_flight == 0) return Status::InvalidArgument("max_in_flight must be at least 1");
  if (config.checkpoint_interval_ms == 0) return Status::InvalidArgument("checkpoint_interval_ms must be positive");
  return config;
}

Result<PrimaryConfig> PrimaryConfig::Load(const std::string& path) {
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  Result<PrimaryConfig> config = FromJson(json);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace understudy::primary
