#include "failover/reprotector.h"

#include <sys/stat.h>

#include "common/json_fields.h"
#include "common/log.h"
#include "primary/primary_agent.h"
#include "transport/channel_config.h"

namespace understudy::failover {

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

Result<std::unique_ptr<transport::Channel>> Reprotector::ConnectToNewSecondary(const ReprotectConfig& config,
                                                                              Deadline deadline) {
  return transport::Dial(config.secondary_uri, config.channel, deadline);
}

Result<std::unique_ptr<Reprotector>> Reprotector::Start(const ReprotectConfig& config, const FailoverConfig& failover,
                                                        const std::string& runtime_dir, PromotedVm vm, UniqueFd serial,
                                                        std::unique_ptr<transport::Channel> channel) {
  ::mkdir(runtime_dir.c_str(), 0700);
  primary::PrimaryConfig primary;
  primary.vm = std::move(vm.definition);
  primary.secondary_uri = config.secondary_uri;
  primary.channel = config.channel;
  primary.checkpoint_interval_ms = config.checkpoint_interval_ms;
  primary.max_in_flight = config.max_in_flight;
  primary.runtime_dir = runtime_dir;
  primary.failover = failover;
  primary::AdoptedVm adopted;
  adopted.qmp = vm.qmp;
  adopted.qemu_pid = vm.qemu_pid;
  adopted.serial = std::move(serial);
  adopted.released = vm.console;
  adopted.channel = std::move(channel);
  adopted.metrics_registry = vm.metrics;
  adopted.disk = vm.disk;
  adopted.relay = vm.relay;
  adopted.released_network = vm.released_network;
  std::unique_ptr<Reprotector> reprotector(new Reprotector());
  reprotector->agent_ = std::make_unique<primary::PrimaryAgent>(std::move(primary), std::move(adopted));
  primary::PrimaryAgent* agent = reprotector->agent_.get();
  reprotector->thread_ = std::thread([agent] {
    Status protected_run = agent->Run();
    Log("reprotect", "protection of the promoted VM ended: " + protected_run.ToString());
  });
  return reprotector;
}

Reprotector::~Reprotector() { Stop(); }

void Reprotector::Stop() {
  if (agent_) agent_->RequestStop();
  if (thread_.joinable()) thread_.join();
}

nlohmann::json Reprotector::StatusJson() const { return agent_->StatusJson(); }

Status Reprotector::StepDown() { return agent_->StepDown(); }

}  // namespace understudy::failover
