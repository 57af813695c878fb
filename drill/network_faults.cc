#include "drill/network_faults.h"

#include <algorithm>
#include <vector>

#include "common/child_process.h"

namespace understudy::drill {

namespace {

constexpr int kCommandBudgetMs = 5000;

Status Unplug(const LabTopology& lab, const LabPort& port) {
  return RunCommand({"ip", "-n", lab.switch_namespace, "link", "set", port.port, "nomaster"},
                    Deadline::AfterMillis(kCommandBudgetMs));
}

}  // namespace

Status IsolateHost(const LabTopology& lab, const std::string& host) {
  // One cable at a time, arbiter LAN first. A real isolation is instantaneous; cut in another
  // order, a loaded machine may leave the host silent to its peer but still reaching etcd for
  // longer than the failure budget, and the host then rightly wins the record: a different
  // fault from the one asked for.
  std::vector<const LabPort*> ports;
  for (const LabPort& port : lab.ports) {
    if (port.host == host) ports.push_back(&port);
  }
  if (ports.empty()) return Status::NotFound("the lab has no host '" + host + "'");
  std::stable_partition(ports.begin(), ports.end(), [](const LabPort* port) { return port->network == "arbiter"; });
  for (const LabPort* port : ports) UNDERSTUDY_RETURN_IF_ERROR(Unplug(lab, *port));
  return Status::Ok();
}

Status CutBetween(const LabTopology& lab, const std::string& a, const std::string& b) {
  int cut = 0;
  for (const LabPort& port : lab.ports) {
    if (port.host != a) continue;
    std::vector<std::string> hosts = lab.HostsOn(port.network);
    bool only_the_two = hosts.size() == 2 && std::count(hosts.begin(), hosts.end(), b) == 1;
    if (!only_the_two) continue;
    UNDERSTUDY_RETURN_IF_ERROR(Unplug(lab, port));
    ++cut;
  }
  if (cut == 0) return Status::NotFound("no network joins only '" + a + "' and '" + b + "'");
  return Status::Ok();
}

Status UnplugPort(const LabTopology& lab, const std::string& host, const std::string& network) {
  for (const LabPort& port : lab.ports) {
    if (port.host == host && port.network == network) return Unplug(lab, port);
  }
  return Status::NotFound("host '" + host + "' is not on network '" + network + "'");
}

Status PlugPort(const LabTopology& lab, const std::string& host, const std::string& network) {
  for (const LabPort& port : lab.ports) {
    if (port.host != host || port.network != network) continue;
    return RunCommand({"ip", "-n", lab.switch_namespace, "link", "set", port.port, "master", port.bridge},
                      Deadline::AfterMillis(kCommandBudgetMs));
  }
  return Status::NotFound("host '" + host + "' is not on network '" + network + "'");
}

Status SlowPort(const LabTopology& lab, const std::string& host, const std::string& network, const std::string& rate) {
  for (const LabPort& port : lab.ports) {
    if (port.host != host || port.network != network) continue;
    // tbf: a token bucket; packets beyond the rate wait in a queue of up to `latency`.
    return RunCommand({"tc", "-n", lab.switch_namespace, "qdisc", "replace", "dev", port.port, "root", "tbf", "rate",
                       rate, "burst", "32kbit", "latency", "400ms"},
                      Deadline::AfterMillis(kCommandBudgetMs));
  }
  return Status::NotFound("host '" + host + "' is not on network '" + network + "'");
}

Status Heal(const LabTopology& lab) {
  Status first_error = Status::Ok();
  for (const LabPort& port : lab.ports) {
    Status attached = RunCommand({"ip", "-n", lab.switch_namespace, "link", "set", port.port, "master", port.bridge},
                                 Deadline::AfterMillis(kCommandBudgetMs));
    // Removing a qdisc that is not there fails; only a failed reattach matters.
    (void)RunCommand({"tc", "-n", lab.switch_namespace, "qdisc", "del", "dev", port.port, "root"},
                     Deadline::AfterMillis(kCommandBudgetMs));
    if (!attached.ok() && first_error.ok()) first_error = attached;
  }
  return first_error;
}

}  // namespace understudy::drill
