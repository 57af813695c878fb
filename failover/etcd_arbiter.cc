// EtcdArbiter: the ownership record as one etcd key, swapped with a v3 transaction that
// compares the key's mod_revision.
//
// Why the JSON gateway and not gRPC: Debian ships etcd-server with the gateway enabled, and
// one small HTTP POST per transition needs no generated code, no gRPC runtime and no extra
// Debian package; a transaction costs ~1-10 ms here either way, dominated by etcd's own
// raft round. The failover path makes at most two calls (read, then compare-and-swap).
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/json_fields.h"
#include "common/log.h"
#include "failover/arbiter.h"
#include "failover/http_client.h"

namespace understudy::failover {

namespace {

using nlohmann::json;

// etcd's replies are input like any other: whoever can write the key (or answer on its port)
// must not be able to end the agent with a field of an unexpected type.
Result<uint64_t> JsonInt(const json& object, std::string_view field, std::string_view where) {
  auto found = object.find(field);
  if (found == object.end()) return uint64_t{0};
  // grpc-gateway writes int64 as strings.
  if (found->is_string()) return ParseUint64Text(found->get_ref<const std::string&>(), std::string(where) + " " + std::string(field));
  return OptionalUint64(object, field, 0, where);
}

class EtcdArbiter : public Arbiter {
 public:
  EtcdArbiter(std::string host, uint16_t port, std::string key)
      : host_(std::move(host)), port_(port), key_(std::move(key)) {}

  Result<OwnershipRecord> Read(Deadline deadline) override {
    UNDERSTUDY_ASSIGN_OR_RETURN(json reply, Post("/v3/kv/range", {{"key", Base64Encode(key_)}}, deadline));
    OwnershipRecord record;
    if (!reply.is_object()) return Status::Corruption("etcd's range reply is not a JSON object");
    auto kvs = reply.find("kvs");
    if (kvs == reply.end() || (kvs->is_array() && kvs->empty())) return record;
    if (!kvs->is_array() || !(*kvs)[0].is_object()) return Status::Corruption("etcd's range reply: \"kvs\" is malformed");
    const json& kv = (*kvs)[0];
    Result<uint64_t> revision = JsonInt(kv, "mod_revision", "etcd's range reply");
    if (!revision.ok()) return Status::Corruption(revision.status().message());
    record.revision = *revision;
    Result<std::string> encoded = OptionalString(kv, "value", "", "etcd's range reply");
    if (!encoded.ok()) return Status::Corruption(encoded.status().message());
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string value, Base64Decode(*encoded));
    const std::string where = "ownership record " + key_;
    Result<json> parsed = ParseJsonObject(value, where);
    if (!parsed.ok()) return Status::Corruption(parsed.status().message());
    Result<std::string> owner = OptionalString(*parsed, "owner", "", where);
    if (!owner.ok()) return Status::Corruption(owner.status().message());
    Result<std::string> mode = OptionalString(*parsed, "mode", "", where);
    if (!mode.ok()) return Status::Corruption(mode.status().message());
    record.owner = std::move(*owner);
    record.mode = std::move(*mode);
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
    Result<bool> succeeded = OptionalBool(reply, "succeeded", false, "etcd's txn reply");
    if (!succeeded.ok()) return Status::Corruption(succeeded.status().message());
    return *succeeded;
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
    Result<json> reply = ParseJsonObject(response->body, "arbiter reply");
    if (!reply.ok()) return Status::Corruption(reply.status().message());
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
  Result<uint64_t> port = ParseUint64Text(std::string_view(endpoint).substr(colon + 1), "etcd endpoint port");
  if (!port.ok() || *port == 0 || *port > 65535) {
    return Status::InvalidArgument("etcd endpoint '" + endpoint + "' is not http://host:port");
  }
  return std::unique_ptr<Arbiter>(new EtcdArbiter(host, static_cast<uint16_t>(*port), key));
}

std::unique_ptr<Arbiter> MakeNoArbiter() { return std::make_unique<NoArbiter>(); }

}  // namespace understudy::failover
