// Reprotector: protects a promoted VM again. After a failover the promoted standby runs the
// guest unprotected; once a new secondary listens (typically the old primary's host, its
// agent restarted as ft-secondary), the agent that promoted the standby turns it into the new
// COLO primary: it claims the ownership record as protected, hands the running QEMU to a
// PrimaryAgent (primary/primary_agent.h) and from then on holds the guest's output until the
// new secondary acknowledges it — the same output commit as on the first primary, continuing
// the same console stream offsets, so observers see no seam.
//
// Configuration, in the secondary's file:
//   "reprotect": {
//     "secondary": "tls://10.0.0.1:7400",  where the new secondary will listen
//     "checkpoint_interval_ms": 50, "max_in_flight": 4,
//     "tls": {...} | "curve": {...} | "insecure": true   dialling options; default: the
//   }                                                      agent's own (TLS certificates
//                                                          serve both directions)
//
// Thread safety: StatusJson() from any thread; the rest from the owner's.
#ifndef UNDERSTUDY_FAILOVER_REPROTECTOR_H_
#define UNDERSTUDY_FAILOVER_REPROTECTOR_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"
#include "console/released_log.h"
#include "failover/failover_config.h"
#include "qemu/qmp_client.h"
#include "qemu/vm_definition.h"
#include "transport/channel.h"

namespace understudy::primary {
class PrimaryAgent;
}
namespace understudy::disk {
class DiskServer;
}
namespace understudy::network {
class FrameRelay;
}
namespace prometheus {
class Registry;
}

namespace understudy::failover {

struct ReprotectConfig {
  std::string secondary_uri;
  transport::ChannelOptions channel;
  uint32_t checkpoint_interval_ms = 50;
  uint32_t max_in_flight = 4;

  // Reads "reprotect" from an agent's configuration; `agent_channel` is the default for
  // dialling. Absent section: no value.
  static Result<std::optional<ReprotectConfig>> FromJson(const nlohmann::json& agent_config,
                                                          const transport::ChannelOptions& agent_channel);
};

// The promoted VM, as the agent that promoted it owns it.
struct PromotedVm {
  qemu::VmDefinition definition;
  qemu::QmpClient* qmp;              // outlives the Reprotector
  int qemu_pid;
  console::ReleasedLog* console;     // the released console, served by the owner
  prometheus::Registry* metrics;     // the owner's /metrics, where the protecting primary reports
  disk::DiskServer* disk = nullptr;  // the VM's disk when it has one: its writes are replicated too
  network::FrameRelay* relay = nullptr;  // the VM's NIC when it has one, and the released log
  console::ReleasedLog* released_network = nullptr;  // that relay sends to its tap
};

class Reprotector {
 public:
  // Connects to the new secondary; kDeadlineExceeded (or a connection error) while none
  // listens yet — callers poll.
  static Result<std::unique_ptr<transport::Channel>> ConnectToNewSecondary(const ReprotectConfig& config,
                                                                          Deadline deadline);

  // Starts protecting `vm` over `channel`. `serial` is the guest's COM1; the caller has
  // stopped reading it (every byte it read is in vm.console). `failover` names this host
  // and its arbiter; `runtime_dir` is a directory of its own.
  static Result<std::unique_ptr<Reprotector>> Start(const ReprotectConfig& config, const FailoverConfig& failover,
                                                    const std::string& runtime_dir, PromotedVm vm, UniqueFd serial,
                                                    std::unique_ptr<transport::Channel> channel);
  ~Reprotector();

  // The protecting primary's status (role "primary").
  nlohmann::json StatusJson() const;
  // Stops protecting (the VM keeps running; its held output stays held).
  void Stop();
  // The protecting primary steps down for a planned switchover (PrimaryAgent::StepDown).
  Status StepDown();

 private:
  Reprotector() = default;

  std::unique_ptr<primary::PrimaryAgent> agent_;
  std::thread thread_;
};

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_REPROTECTOR_H_
