// EtcdArbiter: the ownership record as one etcd key, swapped with a v3 transaction that
// compares the key's mod_revision.
//
// Why the JSON gateway and not gRPC: Debian ships etcd-server with the gateway enabled, and
// one small HTTP POST per transition needs no generated code, no gRPC runtime and no extra
// Debian package; a transaction costs ~1-10 ms here either way, dominated by etcd's own
// raft round. The failover path makes at most two calls (read, then compare-and-swap).
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/log.h"
#include "failover/arbiter.h"
#include "failover/http_client.h"

namespace understudy::failover {

namespace {

using nlohmann::json;

uint64_t JsonInt(const json& value) {
  // grpc-gateway writes int64 as strings.
  if (value.is_string()) return std::stoull(value.get<std::string>());
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  return 0;
}

class EtcdArbiter : public Arbiter {
 public:
  EtcdArbiter(std::string host, uint16_t port, std::string key)
      : host_(std::move(host)), port_(port), key_(std::move(key)) {}

  Result<OwnershipRecord> Read(Deadline deadline) override {
    UNDERSTUDY_ASSIGN_OR_RETURN(json reply, Post("/v3/kv/range", {{"key", Base64Encode(key_)}}, deadline));
    OwnershipRecord record;
    if (!reply.contains("kvs") || reply["kvs"].empty()) return record;
    const json& kv = reply["kvs"][0];
    record.revision = JsonInt(kv.value("mod_revision", json(0)));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string value, Base64Decode(kv.value("value", "")));
    json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return Status::Corruption("ownership record " + key_ + " is not a JSON object: " + value.substr(0, 100));
    }
    record.owner = parsed.value("owner", "");
    record.mode = parsed.value("mode", "");
    return record;
  }

  Result<bool> CompareAndSwap(uint64_t expected_revision, const std::string& owner, const std::string& mode,
                              Deadline deadline) override {
    std::string key = Base64Encode(key_);
    std::string value = Base64Encode(json{{"owner", owner}, {"mode", mode}}.dump());
    json request = {
        {"compare", json::array({{{"key", key}, {"result", "EQUAL"}, {"target", "MOD"},
                                  {"mod_revision", std::to_string(expected_revision)}}})},
        {"success", json::array({{{"request_put", {{"key", key}, {"value", value}}}}})},
    };
    UNDERSTUDY_ASSIGN_OR_RETURN(json reply, Post("/v3/kv/txn", request, deadline));
    return reply.value("succeeded", false);
  }

  std::string Describe() const override { return "etcd at " + host_ + ":" + std::to_string(port_) + " key " + key_; }

 private:
  Result<json> Post(const std::string& path, const json& body, Deadline deadline) {
    Result<HttpResponse> response = HttpPost(host_, port_, path, body.dump(), deadline);
    if (!response.ok()) return Status::Broken("arbiter unreachable: " + response.status().message());
    if (response->status != 200) {
      return Status::Broken("arbiter answered HTTP " + std::to_string(response->status) + ": " +
                            response->body.substr(0, 200));
    }
    json reply = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded()) return Status::Corruption("arbiter reply is not JSON");
    return reply;
  }

  std::string host_;
  uint16_t port_;
  std::string key_;
};

class NoArbiter : public Arbiter {
 public:
  NoArbiter() {
    Log("failover", "WARNING: arbiter 'none': nothing prevents both hosts from running the VM after a partition "
                    "(split brain). Use only on a single host for demos.");
  }
  Result<OwnershipRecord> Read(Deadline) override { return record_; }
  Result<bool> CompareAndSwap(uint64_t, const std::string& owner, const std::string& mode, Deadline) override {
    record_ = {owner, mode, record_.revision + 1};
    return true;
  }
  std::string Describe() const override { return "none (split brain possible)"; }

 private:
  OwnershipRecord record_;
};

}  // namespace

Result<std::unique_ptr<Arbiter>> MakeEtcdArbiter(const std::string& endpoint, const std::string& key) {
  const std::string scheme = "http://";
  size_t colon = endpoint.rfind(':');
  if (endpoint.compare(0, scheme.size(), scheme) != 0 || colon == std::string::npos || colon < scheme.size()) {
    return Status::InvalidArgument("etcd endpoint '" + endpoint + "' is not http://host:port");
  }
  std::string host = endpoint.substr(scheme.size(), colon - scheme.size());
  uint16_t port = static_cast<uint16_t>(std::stoul(endpoint.substr(colon + 1)));
  return std::unique_ptr<Arbiter>(new EtcdArbiter(host, port, key));
}

std::unique_ptr<Arbiter> MakeNoArbiter() { return std::make_unique<NoArbiter>(); }

}  // namespace understudy::failover
