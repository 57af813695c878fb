#include "failover/failover_config.h"

#include <unistd.h>

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
                                                                              const std::string& heartbeat_listen) {
  constexpr std::string_view where = "agent configuration";
  std::vector<std::pair<std::string, std::string>> addresses = {{"failover.heartbeat_listen", heartbeat_listen}};
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
Status CheckNoArbiterIsSingleHost(const nlohmann::json& agent_config, const std::string& heartbeat_listen) {
  UNDERSTUDY_ASSIGN_OR_RETURN(auto addresses, ConfiguredAddresses(agent_config, heartbeat_listen));
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
                                             const std::string& heartbeat_listen) {
  if (key_file.empty()) {
    if (!IsLoopback(heartbeat_listen)) {
      return Status::InvalidArgument("failover.heartbeat_key_file is required when heartbeats leave this host (heartbeat_listen '" +
                                     heartbeat_listen + "'): without a shared secret anyone can forge them");
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

}  // namespace

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
  if (config.arbiter == "none") {
    UNDERSTUDY_RETURN_IF_ERROR(CheckNoArbiterIsSingleHost(agent_config, config.monitor.udp_listen));
  }
  if (config.monitor.budget < 3 * config.monitor.interval) {
    return Status::InvalidArgument("failover.budget_ms must be at least three heartbeat intervals");
  }
  // The pair id only keeps pairs apart (the key authenticates): a stable hash, the same on
  // every build, unlike std::hash.
  std::array<uint8_t, 32> pair_digest = Sha256("understudy pair\n" + pair);
  config.monitor.pair_id = 0;
  for (int i = 0; i < 8; ++i) config.monitor.pair_id = (config.monitor.pair_id << 8) | pair_digest[static_cast<size_t>(i)];
  Result<std::array<uint8_t, 32>> key = HeartbeatKey(key_file, pair, config.monitor.udp_listen);
  if (!key.ok()) return key.status();
  config.monitor.heartbeat_key = *key;
  return config;
}

Result<std::unique_ptr<Arbiter>> FailoverConfig::MakeArbiterFor(const std::string& vm) const {
  if (arbiter == "none") return MakeNoArbiter();
  return MakeEtcdArbiter(arbiter, "/understudy/vms/" + vm + "/owner", etcd);
}

}  // namespace understudy::failover
