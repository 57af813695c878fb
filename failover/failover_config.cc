#include "failover/failover_config.h"

#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/sha.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <utility>
#include <vector>

#include "common/json_fields.h"

namespace understudy::failover {

namespace {

// A secret shorter than this is refused: it would be guessable.
constexpr size_t kMinimumHeartbeatSecretBytes = 32;

std::array<uint8_t, 32> Sha256(const std::string& text) {
  std::array<uint8_t, 32> digest{};
  ::SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

bool IsLoopback(const std::string& address) { return address.rfind("127.", 0) == 0; }

// The host of "scheme://host:port", "host:port" or "[v6]:port".
std::string HostOf(const std::string& address) {
  size_t scheme = address.find("://");
  std::string rest = scheme == std::string::npos ? address : address.substr(scheme + 3);
  if (!rest.empty() && rest[0] == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.rfind(':'));
}

bool IsLoopbackHost(const std::string& host) { return IsLoopback(host) || host == "localhost" || host == "::1"; }

// Every network address an agent's config names, each with the field that names it: where this
// agent listens, where its peer is, where its heartbeats and metrics go.
Result<std::vector<std::pair<std::string, std::string>>> ConfiguredAddresses(const nlohmann::json& agent_config,
                                                                              const FailoverConfig& config) {
  constexpr std::string_view where = "agent configuration";
  std::vector<std::pair<std::string, std::string>> addresses = {{"failover.heartbeat_listen", config.monitor.udp_listen}};
  if (config.second_heartbeat.configured()) {
    addresses.emplace_back("failover.second_heartbeat.listen", config.second_heartbeat.listen);
    addresses.emplace_back("failover.second_heartbeat.peer", config.second_heartbeat.peer);
  }
  for (const char* field : {"secondary", "listen", "metrics_listen"}) {
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string address, OptionalString(agent_config, field, "", where));
    if (!address.empty()) addresses.emplace_back(field, address);
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* reprotect, OptionalObject(agent_config, "reprotect", where));
  if (reprotect != nullptr) {
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string address, OptionalString(*reprotect, "secondary", "", "reprotect"));
    if (!address.empty()) addresses.emplace_back("reprotect.secondary", address);
  }
  return addresses;
}

// "arbiter": "none" lets both hosts run the VM after a partition; only where there is one host
// (every address loopback) can no partition happen.
Status CheckNoArbiterIsSingleHost(const nlohmann::json& agent_config, const FailoverConfig& config) {
  UNDERSTUDY_ASSIGN_OR_RETURN(auto addresses, ConfiguredAddresses(agent_config, config));
  for (const auto& [field, address] : addresses) {
    if (!IsLoopbackHost(HostOf(address))) {
      return Status::InvalidArgument("failover.arbiter \"none\" is accepted only when every address is loopback (one "
                                     "host: no partition can split it), but " + field + " is '" + address +
                                     "'; name an etcd endpoint in failover.arbiter");
    }
  }
  return Status::Ok();
}

// The arbiter's endpoint and the TLS files to reach it, each file checked now rather than at
// the first failover.
Status ReadArbiter(const nlohmann::json& failover, FailoverConfig& config) {
  constexpr std::string_view where = "failover configuration";
  if (!failover.contains("arbiter")) {
    return Status::InvalidArgument("failover.arbiter is missing: name the etcd endpoint that decides who owns the VM "
                                   "(\"https://host:2379\"), or \"none\" when both agents run on this one host");
  }
  UNDERSTUDY_ASSIGN_OR_RETURN(config.arbiter, OptionalString(failover, "arbiter", "", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.etcd.ca_file, OptionalString(failover, "etcd_ca_file", "", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.etcd.cert_file, OptionalString(failover, "etcd_cert_file", "", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(config.etcd.key_file, OptionalString(failover, "etcd_key_file", "", where));
  if (config.arbiter == "none") return Status::Ok();
  if (config.arbiter.rfind("https://", 0) == 0 && config.etcd.ca_file.empty()) {
    return Status::InvalidArgument("failover.arbiter '" + config.arbiter +
                                   "' is https: failover.etcd_ca_file must name the CA that signs etcd's certificate");
  }
  if (config.etcd.cert_file.empty() != config.etcd.key_file.empty()) {
    return Status::InvalidArgument("failover.etcd_cert_file and failover.etcd_key_file go together: both or neither");
  }
  for (const auto& [field, file] : {std::pair{"etcd_ca_file", config.etcd.ca_file},
                                    std::pair{"etcd_cert_file", config.etcd.cert_file},
                                    std::pair{"etcd_key_file", config.etcd.key_file}}) {
    if (!file.empty() && ::access(file.c_str(), R_OK) != 0) {
      return Status::InvalidArgument(std::string("failover.") + field + " '" + file + "' cannot be read");
    }
  }
  // The endpoint's form (scheme, port) is checked by the arbiter itself.
  return MakeEtcdArbiter(config.arbiter, "/understudy/check", config.etcd).status();
}

// The heartbeat key: from the secret file both agents share, or — only where the heartbeats
// never leave this host — from the pair's name.
Result<std::array<uint8_t, 32>> HeartbeatKey(const std::string& key_file, const std::string& pair,
                                             const FailoverConfig& config) {
  if (key_file.empty()) {
    for (const auto& [field, address] : {std::pair{"heartbeat_listen", config.monitor.udp_listen},
                                         std::pair{"second_heartbeat.listen", config.second_heartbeat.listen}}) {
      if (address.empty() || IsLoopback(address)) continue;
      return Status::InvalidArgument(std::string("failover.heartbeat_key_file is required when heartbeats leave this host (") +
                                     field + " '" + address + "'): without a shared secret anyone can forge them");
    }
    return Sha256("understudy heartbeat key v1 (loopback only)\n" + pair);
  }
  std::ifstream file(key_file, std::ios::binary);
  if (!file) return Status::InvalidArgument("failover.heartbeat_key_file '" + key_file + "' cannot be read");
  std::string secret((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.size() < kMinimumHeartbeatSecretBytes) {
    return Status::InvalidArgument("failover.heartbeat_key_file '" + key_file + "' holds " + std::to_string(secret.size()) +
                                   " bytes; at least " + std::to_string(kMinimumHeartbeatSecretBytes) + " are needed");
  }
  return Sha256("understudy heartbeat key v1\n" + pair + "\n" + secret);
}

// "a.b.c.d:port" with a port in 1..65535 (0 too when `port_zero_ok`); `field` names it in errors.
Status CheckIpv4Address(const std::string& address, const std::string& field, bool port_zero_ok) {
  size_t colon = address.rfind(':');
  in_addr host{};
  if (colon == std::string::npos || ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &host) != 1) {
    return Status::InvalidArgument(field + " '" + address + "' must be IPv4 host:port");
  }
  Result<uint64_t> port = ParseUint64Text(std::string_view(address).substr(colon + 1), field + " port");
  if (!port.ok() || *port > 65535 || (*port == 0 && !port_zero_ok)) {
    return Status::InvalidArgument(field + " '" + address + "' needs a port in 1..65535" +
                                   (port_zero_ok ? "" : ": the peer's configuration names this address, so it must be fixed"));
  }
  return Status::Ok();
}

// "second_heartbeat": {"listen": ..., "peer": ...}: path B on a second network. Its addresses
// come from both hosts' configs (nothing is told at pairing), so both are fixed, and it must be
// a different network from path A or it would add nothing.
Status ReadSecondHeartbeat(const nlohmann::json& failover, FailoverConfig& config) {
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* section,
                              OptionalObject(failover, "second_heartbeat", "failover configuration"));
  if (section == nullptr) return Status::Ok();
  constexpr std::string_view where = "failover.second_heartbeat";
  SecondHeartbeatPath& second = config.second_heartbeat;
  UNDERSTUDY_ASSIGN_OR_RETURN(second.listen, OptionalString(*section, "listen", "", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(second.peer, OptionalString(*section, "peer", "", where));
  for (const auto& [field, address] : {std::pair{"listen", second.listen}, std::pair{"peer", second.peer}}) {
    if (address.empty()) {
      return Status::InvalidArgument(std::string("failover.second_heartbeat.") + field +
                                     " is missing: path B needs this host's address on the second heartbeat "
                                     "network (listen) and the peer's address there (peer)");
    }
    UNDERSTUDY_RETURN_IF_ERROR(CheckIpv4Address(address, std::string("failover.second_heartbeat.") + field, false));
    if (address.rfind("0.0.0.0:", 0) == 0) {
      return Status::InvalidArgument(std::string("failover.second_heartbeat.") + field + " '" + address +
                                     "' must be a host's address on the second heartbeat network, not a wildcard");
    }
  }
  if (second.listen == config.monitor.udp_listen) {
    return Status::InvalidArgument("failover.second_heartbeat.listen '" + second.listen +
                                   "' is failover.heartbeat_listen: path B must use a second network");
  }
  if (HostOf(second.listen) == HostOf(config.monitor.udp_listen) && !IsLoopback(second.listen)) {
    return Status::InvalidArgument("failover.second_heartbeat.listen '" + second.listen + "' is on the same host address as "
                                   "failover.heartbeat_listen '" + config.monitor.udp_listen +
                                   "': path B must use a second, independent network");
  }
  return Status::Ok();
}

}  // namespace

HeartbeatPathsOptions FailoverConfig::HeartbeatOptions() const {
  HeartbeatPathsOptions options;
  options.listen = monitor.udp_listen;
  options.second = second_heartbeat;
  options.pair_id = monitor.pair_id;
  options.interval = monitor.interval;
  options.auth.key = monitor.heartbeat_key;
  // An echo may be as old as twice the budget: a loaded host answers late.
  options.auth.max_echo_age = 2 * monitor.budget;
  return options;
}

Result<FailoverConfig> FailoverConfig::FromJson(const nlohmann::json& agent_config) {
  FailoverConfig config;
  std::string pair, key_file;
  char hostname[256] = "localhost";
  ::gethostname(hostname, sizeof(hostname) - 1);
  constexpr std::string_view where = "failover configuration";
  UNDERSTUDY_ASSIGN_OR_RETURN(config.name, OptionalString(agent_config, "name", hostname, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(const nlohmann::json* section, OptionalObject(agent_config, "failover", where));
  const nlohmann::json failover = section ? *section : nlohmann::json::object();
  UNDERSTUDY_ASSIGN_OR_RETURN(config.monitor.udp_listen,
                              OptionalString(failover, "heartbeat_listen", config.monitor.udp_listen, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t interval_ms, OptionalUint32(failover, "interval_ms", 20, where));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t budget_ms, OptionalUint32(failover, "budget_ms", 150, where));
  if (interval_ms == 0) return Status::InvalidArgument("failover.interval_ms must be positive");
  config.monitor.interval = std::chrono::milliseconds(interval_ms);
  config.monitor.budget = std::chrono::milliseconds(budget_ms);
  UNDERSTUDY_ASSIGN_OR_RETURN(pair, OptionalString(failover, "pair", "default", where));
  UNDERSTUDY_ASSIGN_OR_RETURN(key_file, OptionalString(failover, "heartbeat_key_file", "", where));
  UNDERSTUDY_RETURN_IF_ERROR(ReadArbiter(failover, config));
  if (config.monitor.udp_listen.rfind("0.0.0.0:", 0) == 0) {
    // The bound address is what the peer is told to send its heartbeats to.
    return Status::InvalidArgument("failover.heartbeat_listen '" + config.monitor.udp_listen +
                                   "' must be this host's address on the heartbeat network, not a wildcard: the "
                                   "peer sends its heartbeats to exactly this address");
  }
  UNDERSTUDY_RETURN_IF_ERROR(ReadSecondHeartbeat(failover, config));
  if (config.arbiter == "none") {
    UNDERSTUDY_RETURN_IF_ERROR(CheckNoArbiterIsSingleHost(agent_config, config));
  }
  if (config.monitor.budget < 3 * config.monitor.interval) {
    return Status::InvalidArgument("failover.budget_ms must be at least three heartbeat intervals");
  }
  // The pair id only keeps pairs apart (the key authenticates): a stable hash, the same on
  // every build, unlike std::hash.
  std::array<uint8_t, 32> pair_digest = Sha256("understudy pair\n" + pair);
  config.monitor.pair_id = 0;
  for (int i = 0; i < 8; ++i) config.monitor.pair_id = (config.monitor.pair_id << 8) | pair_digest[static_cast<size_t>(i)];
  Result<std::array<uint8_t, 32>> key = HeartbeatKey(key_file, pair, config);
  if (!key.ok()) return key.status();
  config.monitor.heartbeat_key = *key;
  return config;
}

Result<std::unique_ptr<Arbiter>> FailoverConfig::MakeArbiterFor(const std::string& vm) const {
  if (arbiter == "none") return MakeNoArbiter();
  return MakeEtcdArbiter(arbiter, "/understudy/vms/" + vm + "/owner", etcd);
}

PairControllerOptions FailoverConfig::ControllerOptions(Role role) const {
  PairControllerOptions options;
  options.role = role;
  options.me = name;
  options.budget_ms = monitor.budget.count();
  options.has_arbiter = arbiter != "none";
  options.single_host_without_arbiter = !options.has_arbiter;
  return options;
}

}  // namespace understudy::failover
