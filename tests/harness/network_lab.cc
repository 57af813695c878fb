#include "tests/harness/network_lab.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "common/child_process.h"
#include "common/unique_fd.h"

namespace understudy::testing {

namespace {

constexpr int kCommandBudgetMs = 10000;


struct Wire {
  std::string host, network, host_interface, address;
};

// Short names: interface names are limited to 15 characters.
const Wire kWires[] = {
    {"primary", "replication", "rep0", "10.98.0.1"},   {"secondary", "replication", "rep0", "10.98.0.2"},
    {"primary", "heartbeat", "hb0", "10.97.0.1"},      {"secondary", "heartbeat", "hb0", "10.97.0.2"},
    {"primary", "second_heartbeat", "hb1", "10.96.0.1"}, {"secondary", "second_heartbeat", "hb1", "10.96.0.2"},
    {"primary", "arbiter", "arb0", "10.99.0.1"},       {"secondary", "arbiter", "arb0", "10.99.0.2"},
    {"arbiter", "arbiter", "arb0", "10.99.0.3"},
};

}  // namespace

std::optional<std::string> NetworkLabUnavailableReason() {
  if (::geteuid() != 0) return "network namespaces need root";
  if (!FindExecutable("ip").ok()) return "the ip command (iproute2) is not installed";
  return std::nullopt;
}

std::vector<std::string> NetnsExec(const std::string& name) { return {"ip", "netns", "exec", name}; }

Status RunIp(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return RunCommand(argv, Deadline::AfterMillis(kCommandBudgetMs));
}

Status RunInNetworkNamespace(const std::string& name, const std::function<void()>& work) {
  UniqueFd handle(::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!handle.valid()) return Status::FromErrno("opening network namespace " + name, errno);
  Status entered = Status::Ok();
  std::thread inside([&] {
    // setns changes only this thread's namespace, and the thread ends right after.
    if (::setns(handle.get(), CLONE_NEWNET) != 0) {
      entered = Status::FromErrno("entering network namespace " + name, errno);
      return;
    }
    work();
  });
  inside.join();
  return entered;
}

Result<std::unique_ptr<NetworkLab>> NetworkLab::Create(const std::string& description_path) {
  if (std::optional<std::string> why = NetworkLabUnavailableReason()) return Status::FailedPrecondition(*why);
  std::unique_ptr<NetworkLab> lab(new NetworkLab());
  lab->description_path_ = description_path;
  static std::atomic<int> counter{0};
  // Unique on this machine even across PID namespaces (sandboxed tests may share a pid).
  char prefix_text[32];
  std::snprintf(prefix_text, sizeof(prefix_text), "us%d-%d-%04x", static_cast<int>(::getpid()), counter++,
                static_cast<unsigned>(std::random_device{}() & 0xffff));
  const std::string prefix = prefix_text;
  lab->topology_.switch_namespace = prefix + "-sw";
  lab->topology_.host_namespaces = {
      {"primary", prefix + "-pri"}, {"secondary", prefix + "-sec"}, {"arbiter", prefix + "-etcd"}};
  UNDERSTUDY_RETURN_IF_ERROR(lab->Build());
  std::ofstream file(description_path);
  file << lab->topology_.ToJson().dump(2) << "\n";
  if (!file) return Status::IOError("cannot write " + description_path);
  return lab;
}

Status NetworkLab::Build() {
  const std::string& sw = topology_.switch_namespace;
  std::vector<std::string> namespaces = {sw};
  for (const auto& [host, name] : topology_.host_namespaces) namespaces.push_back(name);
  for (const std::string& name : namespaces) {
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"netns", "add", name}));
    created_namespaces_.push_back(name);
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", name, "link", "set", "lo", "up"}));
  }
  for (const std::string network : {"replication", "heartbeat", "second_heartbeat", "arbiter"}) {
    const std::string bridge = "br-" + network.substr(0, 4);
    // No STP and no forwarding delay: a port forwards the moment it is (re)attached.
    UNDERSTUDY_RETURN_IF_ERROR(
        RunIp({"-n", sw, "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"}));
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "set", bridge, "up"}));
  }
  for (const Wire& wire : kWires) {
    const std::string& host_namespace = topology_.host_namespaces.at(wire.host);
    const std::string bridge = "br-" + wire.network.substr(0, 4);
    const std::string port = wire.host.substr(0, 3) + "-" + wire.network.substr(0, 4);
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "add", port, "type", "veth", "peer", "name", wire.host_interface,
                                   "netns", host_namespace}));
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "set", port, "master", bridge}));
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "set", port, "up"}));
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", host_namespace, "addr", "add", wire.address + "/24", "dev", wire.host_interface}));
    UNDERSTUDY_RETURN_IF_ERROR(RunIp({"-n", host_namespace, "link", "set", wire.host_interface, "up"}));
    topology_.ports.push_back({wire.host, wire.network, bridge, port, wire.address});
  }
  return Status::Ok();
}

NetworkLab::~NetworkLab() {
  for (const std::string& name : created_namespaces_) (void)RunIp({"netns", "del", name});
}

}  // namespace understudy::testing
