#include "primary/primary_config.h"

#include "common/json_fields.h"
#include "common/json_file.h"
#include "transport/channel_config.h"

namespace understudy::primary {

namespace {

// "test_only": switches that exist for tests (see primary_config.h); never in production.
Status ReadTestOnly(const nlohmann::json& json, PrimaryConfig& config) {
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* test_only, OptionalObject(json, "test_only", "configuration"));
  if (!test_only) return Status::Ok();
  constexpr std::string_view test_where = "configuration: test_only";
  UNDERSTUDY_ASSIGN_OR_RETURN(config.test_ship_disk_writes_early,
                              OptionalBool(*test_only, "ship_disk_writes_early", false, test_where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.test_network_output_commit_off,
                              OptionalBool(*test_only, "network_output_commit_off", false, test_where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.test_control_commands, OptionalBool(*test_only, "control_commands", false, test_where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.test_drop_page_at_epoch, OptionalUint64(*test_only, "drop_page_at_epoch", 0, test_where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.test_hold_checkpoint_at_epoch,
                              OptionalUint64(*test_only, "hold_checkpoint_at_epoch", 0, test_where));
  if (test_only->contains("corrupt_epoch")) {
    UNDERSTUDY_ASSIGN_OR_RETURN(config.test_corrupt_epoch, RequireUint64(*test_only, "corrupt_epoch", test_where));
  }
  return Status::Ok();
}

}  // namespace

Result<PrimaryConfig> PrimaryConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return Status::InvalidArgument("the configuration must be a JSON object");
  PrimaryConfig config;
  if (!json.contains("vm")) return Status::InvalidArgument("configuration lacks \"vm\"");
  Result<qemu::VmDefinition> vm = qemu::VmDefinition::FromJson(json["vm"]);
  if (!vm.ok()) return vm.status().WithContext("\"vm\"");
  config.vm = std::move(*vm);
  constexpr std::string_view where = "configuration";
  UNDERSTUDY_ASSIGN_OR_RETURN(config.secondary_uri, RequireString(json, "secondary", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.runtime_dir, RequireString(json, "runtime_dir", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.checkpoint_interval_ms,
                              OptionalUint32(json, "checkpoint_interval_ms", config.checkpoint_interval_ms, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.max_in_flight, OptionalUint32(json, "max_in_flight", config.max_in_flight, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.byte_caps, ByteCaps::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.output_triggered_checkpoints,
                              OptionalBool(json, "output_triggered_checkpoints", config.output_triggered_checkpoints, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.min_checkpoint_spacing_ms,
                              OptionalUint32(json, "min_checkpoint_spacing_ms", config.min_checkpoint_spacing_ms, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.max_pause_ms, OptionalUint32(json, "max_pause_ms", config.max_pause_ms, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.min_run_fraction,
                              OptionalDouble(json, "min_run_fraction", config.min_run_fraction, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.boot_timeout_ms, OptionalUint32(json, "boot_timeout_ms", config.boot_timeout_ms, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.qemu_binary, OptionalString(json, "qemu_binary", config.qemu_binary, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.metrics_listen, OptionalString(json, "metrics_listen", config.metrics_listen, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.disk_image, OptionalString(json, "disk_image", config.disk_image, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t sync_mib, OptionalUint32(json, "disk_sync_mib_per_checkpoint", 8, where));
  if (sync_mib == 0 || sync_mib > 4096) {
    return Status::InvalidArgument("disk_sync_mib_per_checkpoint must be within 1..4096");
  }
  config.disk_sync_bytes_per_checkpoint = uint64_t{sync_mib} << 20;
  UNDERSTUDY_ASSIGN_OR_RETURN(config.qemu_extra_args, OptionalStringArray(json, "qemu_extra_args", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* attach, OptionalObject(json, "attach", where));
  if (attach) {
    config.attach.emplace();
    UNDERSTUDY_ASSIGN_OR_RETURN(config.attach->qmp_socket, RequireString(*attach, "qmp", "configuration: attach"));
    UNDERSTUDY_ASSIGN_OR_RETURN(config.attach->serial_socket, RequireString(*attach, "serial", "configuration: attach"));
  }
  UNDERSTUDY_RETURN_IF_ERROR(ReadTestOnly(json, config));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.network, network::NetworkConfig::FromJson(json));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.channel, transport::ChannelOptionsFromJson(json));
  UNDERSTUDY_RETURN_IF_ERROR(
      transport::RequirePeerNameAcrossHosts({config.secondary_uri}, config.channel).WithContext("configuration"));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.failover, failover::FailoverConfig::FromJson(json));
  if (config.max_in_flight == 0) return Status::InvalidArgument("max_in_flight must be at least 1");
  if (config.min_checkpoint_spacing_ms == 0) return Status::InvalidArgument("min_checkpoint_spacing_ms must be positive");
  if (config.checkpoint_interval_ms == 0) return Status::InvalidArgument("checkpoint_interval_ms must be positive");
  if (!(config.min_run_fraction >= 0 && config.min_run_fraction < 1)) {
    return Status::InvalidArgument("min_run_fraction must be within [0, 1)");
  }
  return config;
}

Result<PrimaryConfig> PrimaryConfig::Load(const std::string& path) {
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  Result<PrimaryConfig> config = FromJson(json);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace understudy::primary
