#include "secondary/primary_binding.h"

#include <algorithm>
#include <cctype>

#include "common/json_fields.h"
#include "transport/channel_config.h"

namespace understudy::secondary {

namespace {

// The same shape a VM definition's name has (qemu/vm_definition.h): it names the ownership
// record and paths.
bool IsVmName(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::string Listed(const std::vector<std::string>& values) {
  std::string list;
  for (const std::string& value : values) list += (list.empty() ? "'" : ", '") + value + "'";
  return list;
}

}  // namespace

Result<PrimaryBinding> PrimaryBinding::FromConfig(const nlohmann::json& config, const std::string& listen_uri,
                                                  const transport::ChannelOptions& channel,
                                                  const std::vector<std::string>& other_uris) {
  PrimaryBinding binding;
  UNDERSTUDY_ASSIGN_OR_RETURN(binding.vm, RequireString(config, "vm", "configuration"));
  if (!IsVmName(binding.vm)) {
    return Status::InvalidArgument("configuration: \"vm\" must be the protected VM's name (letters, digits, '-', '_', "
                                   "'.'; at most 64 characters)");
  }
  std::vector<std::string> uris = other_uris;
  uris.push_back(listen_uri);
  UNDERSTUDY_RETURN_IF_ERROR(transport::RequirePeerNameAcrossHosts(uris, channel).WithContext("configuration"));
  if (listen_uri.rfind("tls://", 0) == 0 && !channel.tls.expected_peer_name.empty()) {
    binding.identities = {channel.tls.expected_peer_name};
  } else if (listen_uri.rfind("zmq+curve://", 0) == 0) {
    if (channel.curve.allowed_client_keys.empty()) {
      return Status::InvalidArgument("configuration: \"curve\": {\"allowed_client_keys\"} must name the primaries' "
                                     "public keys");
    }
    binding.identities = channel.curve.allowed_client_keys;
  }
  return binding;
}

Status PrimaryBinding::CheckHello(const replication::Hello& hello, const transport::Channel& channel) const {
  const std::string where = "the hello of primary '" + hello.name + "' from " + channel.peer_identity();
  if (hello.vm != vm) {
    return Status::FailedPrecondition(where + " names VM '" + hello.vm + "'; this secondary protects VM '" + vm + "'");
  }
  if (identities.empty()) return Status::Ok();
  const std::string proved = channel.authenticated_identity();
  if (std::find(identities.begin(), identities.end(), proved) == identities.end()) {
    return Status::FailedPrecondition(where + ": its channel proved identity '" + proved +
                                      "', not one this secondary protects for (" + Listed(identities) + ")");
  }
  return Status::Ok();
}

Status PrimaryBinding::CheckDefinitionName(const std::string& name) const {
  if (name == vm) return Status::Ok();
  return Status::FailedPrecondition("the machine definition describes VM '" + name + "'; this secondary protects VM '" +
                                    vm + "'");
}

}  // namespace understudy::secondary
