#include "drill/lab_topology.h"

#include "common/json_file.h"

namespace understudy::drill {

using nlohmann::json;

std::vector<std::string> LabTopology::HostsOn(const std::string& network) const {
  std::vector<std::string> hosts;
  for (const LabPort& port : ports) {
    if (port.network == network) hosts.push_back(port.host);
  }
  return hosts;
}

Result<std::string> LabTopology::AddressOf(const std::string& host, const std::string& network) const {
  for (const LabPort& port : ports) {
    if (port.host == host && port.network == network) return port.address;
  }
  return Status::NotFound("host '" + host + "' is not on network '" + network + "'");
}

json LabTopology::ToJson() const {
  json port_list = json::array();
  for (const LabPort& port : ports) {
    port_list.push_back({{"host", port.host},
                         {"network", port.network},
                         {"bridge", port.bridge},
                         {"port", port.port},
                         {"address", port.address}});
  }
  return {{"switch_namespace", switch_namespace}, {"hosts", host_namespaces}, {"ports", port_list}};
}

Result<LabTopology> LabTopology::FromJson(const json& description) {
  if (!description.is_object() || !description.contains("switch_namespace") || !description.contains("hosts") ||
      !description.contains("ports")) {
    return Status::InvalidArgument("a lab description needs switch_namespace, hosts and ports");
  }
  try {
    LabTopology lab;
    lab.switch_namespace = description.at("switch_namespace").get<std::string>();
    lab.host_namespaces = description.at("hosts").get<std::map<std::string, std::string>>();
    for (const json& port : description.at("ports")) {
      lab.ports.push_back({port.at("host").get<std::string>(), port.at("network").get<std::string>(),
                           port.at("bridge").get<std::string>(), port.at("port").get<std::string>(),
                           port.at("address").get<std::string>()});
    }
    return lab;
  } catch (const json::exception& error) {
    return Status::InvalidArgument(std::string("lab description: ") + error.what());
  }
}

Result<LabTopology> LabTopology::Load(const std::string& path) {
  UNDERSTUDY_ASSIGN_OR_RETURN(json description, ReadJsonFile(path));
  Result<LabTopology> lab = FromJson(description);
  if (!lab.ok()) return lab.status().WithContext(path);
  return lab;
}

}  // namespace understudy::drill
