// NetworkLab: three hosts of a protected pair as network namespaces on this machine, wired
// the way an HA cluster would be (drill/lab_topology.h explains the switch):
//
//   replication  primary 10.98.0.1   secondary 10.98.0.2                  checkpoint channel
//   heartbeat    primary 10.97.0.1   secondary 10.97.0.2                  UDP heartbeats (path A)
//   second_heartbeat  primary 10.96.0.1   secondary 10.96.0.2             path B, when configured
//   arbiter      primary 10.99.0.1   secondary 10.99.0.2   etcd 10.99.0.3
//
// Separate links between the agents make the independent heartbeat paths real: any one can be
// cut without the others (the agents use second_heartbeat only when AgentPairOptions asks). The lab writes its description (lab.json) for `ftctl drill --lab`.
// Destroying the lab deletes every namespace, and with them every interface and bridge.
#ifndef UNDERSTUDY_TESTS_HARNESS_NETWORK_LAB_H_
#define UNDERSTUDY_TESTS_HARNESS_NETWORK_LAB_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "drill/lab_topology.h"

namespace understudy::testing {

// Empty when this machine can build labs (root, `ip`, network namespaces); otherwise why not.
std::optional<std::string> NetworkLabUnavailableReason();

// {"ip", "netns", "exec", name}: prefix for a command that should run inside `name`.
std::vector<std::string> NetnsExec(const std::string& name);

// `ip ARGUMENTS...`, with a deadline; its output in the error when it fails.
Status RunIp(const std::vector<std::string>& arguments);

// Runs `work` on a thread that has entered network namespace `name` (sockets it opens live
// there); the calling thread is unaffected.
Status RunInNetworkNamespace(const std::string& name, const std::function<void()>& work);

class NetworkLab {
 public:
  // `description_path`: where to write lab.json.
  static Result<std::unique_ptr<NetworkLab>> Create(const std::string& description_path);
  ~NetworkLab();

  const drill::LabTopology& topology() const { return topology_; }
  const std::string& description_path() const { return description_path_; }
  // The namespace of "primary", "secondary" or "arbiter".
  const std::string& NamespaceOf(const std::string& host) const { return topology_.host_namespaces.at(host); }
  std::string AddressOf(const std::string& host, const std::string& network) const {
    return *topology_.AddressOf(host, network);
  }

 private:
  NetworkLab() = default;
  Status Build();

  drill::LabTopology topology_;
  std::string description_path_;
  std::vector<std::string> created_namespaces_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_NETWORK_LAB_H_
