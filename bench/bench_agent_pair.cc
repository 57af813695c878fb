#include "bench/bench_agent_pair.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "control/control_server.h"

namespace understudy::bench {

using nlohmann::json;

namespace {

Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path);
  file << contents;
  return file ? Status::Ok() : Status::IOError("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

Status WaitForState(const std::string& control_socket, const std::string& state, Deadline deadline) {
  std::string last = "no answer";
  while (!deadline.Expired()) {
    Result<json> status = control::CallControl(control_socket, {{"command", "status"}}, Deadline::AfterMillis(1000));
    if (status.ok()) {
      last = status->dump();
      if (status->value("state", "") == state) return Status::Ok();
      if (status->value("state", "") == "failed") break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::DeadlineExceeded("agent never reached state '" + state + "'; last status: " + last);
}

}  // namespace

Result<std::unique_ptr<BenchAgentPair>> BenchAgentPair::Start(const BenchAgentPairOptions& options,
                                                              std::string_view name) {
  UNDERSTUDY_ASSIGN_OR_RETURN(testing::ScratchDir dir, testing::ScratchDir::Create("ub-" + std::string(name)));
  const std::string root = dir.path();
  // As testing::AgentPair configures the pair with transport "tcp" and arbiter "none": the
  // checkpoint channel is plain TCP (like QEMU COLO's), heartbeats run, no etcd.
  json failover = {{"pair", std::string(name)}, {"heartbeat_listen", "127.0.0.1:0"}, {"arbiter", "none"}};
  json secondary_config = {{"listen", "tcp://127.0.0.1:0"}, {"insecure", true}, {"runtime_dir", root + "/secondary"},
                           {"name", "secondary"},         {"failover", failover}};
  UNDERSTUDY_RETURN_IF_ERROR(WriteFile(root + "/secondary.json", secondary_config.dump(2)));
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess secondary,
                              ChildProcess::Spawn({testing::RunfilePath("secondary/ft-secondary"), "--config",
                                                   root + "/secondary.json"},
                                                  root + "/secondary.log"));
  std::unique_ptr<BenchAgentPair> pair(new BenchAgentPair(std::move(dir), std::move(secondary)));

  std::string listen;
  Deadline deadline = Deadline::AfterMillis(10000);
  while (listen.empty()) {
    Result<json> status = control::CallControl(root + "/secondary/control.sock", {{"command", "status"}},
                                               Deadline::AfterMillis(2000));
    if (status.ok()) listen = status->value("listen", "");
    if (deadline.Expired()) return Status::DeadlineExceeded("the secondary did not start: " + pair->SecondaryLog());
    if (listen.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  const std::string monitor_path = root + "/bench-qmp.sock";
  qemu::VmDefinition vm = testing::CounterGuestDefinition(options.guest, "");
  vm.extra_args = {"-qmp", "unix:" + monitor_path + ",server=on,wait=off"};
  vm.extra_args.insert(vm.extra_args.end(), options.extra_qemu_args.begin(), options.extra_qemu_args.end());
  json primary_config = {{"vm", vm.ToJson()},
                         {"secondary", listen},
                         {"insecure", true},
                         {"name", "primary"},
                         {"failover", failover},
                         {"runtime_dir", root + "/primary"},
                         {"checkpoint_interval_ms", options.checkpoint_interval_ms},
                         {"max_in_flight", options.max_in_flight}};
  UNDERSTUDY_RETURN_IF_ERROR(WriteFile(root + "/primary.json", primary_config.dump(2)));
  UNDERSTUDY_ASSIGN_OR_RETURN(
      ChildProcess primary,
      ChildProcess::Spawn({testing::RunfilePath("primary/ft-primary"), "--config", root + "/primary.json"},
                          root + "/primary.log"));
  pair->primary_.emplace(std::move(primary));

  // Connect while only the primary's QEMU can have created the monitor socket.
  Result<std::unique_ptr<qemu::QmpClient>> monitor =
      qemu::QmpClient::Connect(monitor_path, Deadline::AfterMillis(30000));
  if (!monitor.ok()) return monitor.status().WithContext("the primary QEMU's extra monitor; primary log:\n" + pair->PrimaryLog());
  pair->monitor_ = std::move(*monitor);
  Result<json> run_state = pair->monitor_->Execute("query-status", Deadline::AfterMillis(5000));
  if (!run_state.ok()) return run_state.status().WithContext("query-status on the extra monitor");
  if (run_state->value("status", "") == "inmigrate") {
    return Status::FailedPrecondition("the extra monitor reached the standby QEMU, not the primary's");
  }

  Status protecting = WaitForState(root + "/primary/control.sock", "protected", Deadline::AfterMillis(90000));
  if (!protecting.ok()) {
    return protecting.WithContext("primary log:\n" + pair->PrimaryLog() + "\nsecondary log:\n" + pair->SecondaryLog());
  }
  return pair;
}

Result<json> BenchAgentPair::PrimaryStatus() const {
  return control::CallControl(dir_.path() + "/primary/control.sock", {{"command", "status"}}, Deadline::AfterMillis(2000));
}

std::string BenchAgentPair::PrimaryLog() const { return ReadFile(dir_.path() + "/primary.log"); }
std::string BenchAgentPair::PrimaryQemuLog() const { return ReadFile(dir_.path() + "/primary/qemu.log"); }
std::string BenchAgentPair::SecondaryLog() const { return ReadFile(dir_.path() + "/secondary.log"); }

}  // namespace understudy::bench
