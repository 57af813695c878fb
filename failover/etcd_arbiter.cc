// EtcdArbiter: the ownership record as one etcd key, swapped with a v3 transaction that
// compares the key's mod_revision.
//
// Why the JSON gateway and not gRPC: Debian ships etcd-server with the gateway enabled, and
// one small HTTPS POST per transition (through libcurl, common/http_client.h) needs no
// generated code, no gRPC runtime; a transaction costs ~1-10 ms here either way, dominated by
// etcd's own raft round. The failover path makes at most two calls (read, then
// compare-and-swap). The messages themselves are in failover/etcd_reply.h.
#include "common/http_client.h"
#include "common/json_fields.h"
#include "common/log.h"
#include "failover/arbiter.h"
#include "failover/etcd_reply.h"

namespace understudy::failover {

namespace {

// etcd's replies to us are a few hundred bytes.
constexpr size_t kMaxEtcdReplyBytes = 64 * 1024;

class EtcdArbiter : public Arbiter {
 public:
  EtcdArbiter(std::string endpoint, std::string key, HttpOptions http)
      : endpoint_(std::move(endpoint)), key_(std::move(key)), http_(std::move(http)) {}

  Result<OwnershipRecord> Read(Deadline deadline) override {
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string reply, Post("/v3/kv/range", EtcdRangeRequest(key_), deadline));
    return ParseEtcdRangeReply(reply, key_);
  }

  Result<bool> CompareAndSwap(uint64_t expected_revision, const std::string& owner, const std::string& mode,
                              Deadline deadline) override {
    UNDERSTUDY_ASSIGN_OR_RETURN(
        std::string reply, Post("/v3/kv/txn", EtcdCompareAndSwapRequest(key_, expected_revision, owner, mode), deadline));
    return ParseEtcdTxnReply(reply);
  }

  std::string Describe() const override { return "etcd at " + endpoint_ + " key " + key_; }

 private:
  // A timeout stays kDeadlineExceeded (a swap's outcome is then unknown); every other failure
  // to get an answer is kBroken ("arbiter unreachable").
  Result<std::string> Post(const std::string& path, const std::string& body, Deadline deadline) {
    Result<std::string> reply = http_.Post(endpoint_ + path, body, deadline);
    if (reply.ok()) return reply;
    if (reply.status().code() == Status::Code::kDeadlineExceeded) {
      return Status::DeadlineExceeded("arbiter did not answer in time: " + reply.status().message());
    }
    return Status::Broken("arbiter unreachable: " + reply.status().message());
  }

  const std::string endpoint_;
  const std::string key_;
  // One kept-alive connection: a read and a swap on the failover path cost a round trip
  // each, not a TLS handshake each.
  HttpClient http_;
};

class NoArbiter : public Arbiter {
 public:
  NoArbiter() {
    Log("failover", "WARNING: arbiter 'none': nothing prevents both hosts from running the VM after a partition "
                    "(split brain). Accepted only where every address is loopback: one host, demos and tests.");
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

// "http://host:port" or "https://host:port", nothing after the port.
bool IsEndpoint(const std::string& endpoint, std::string_view scheme) {
  if (endpoint.compare(0, scheme.size(), scheme) != 0) return false;
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon <= scheme.size()) return false;
  Result<uint64_t> port = ParseUint64Text(std::string_view(endpoint).substr(colon + 1), "etcd endpoint port");
  return port.ok() && *port > 0 && *port <= 65535;
}

}  // namespace

Result<std::unique_ptr<Arbiter>> MakeEtcdArbiter(const std::string& endpoint, const std::string& key,
                                                 const EtcdCredentials& credentials) {
  const bool https = IsEndpoint(endpoint, "https://");
  if (!https && !IsEndpoint(endpoint, "http://")) {
    return Status::InvalidArgument("etcd endpoint '" + endpoint + "' is not https://host:port or http://host:port");
  }
  if (https && credentials.ca_file.empty()) {
    return Status::InvalidArgument("etcd endpoint '" + endpoint + "' is https: a CA file to verify etcd against is needed");
  }
  if (credentials.cert_file.empty() != credentials.key_file.empty()) {
    return Status::InvalidArgument("etcd client certificate and key: both or neither");
  }
  HttpOptions http;
  http.ca_file = credentials.ca_file;
  http.cert_file = credentials.cert_file;
  http.key_file = credentials.key_file;
  http.max_body_bytes = kMaxEtcdReplyBytes;
  return std::unique_ptr<Arbiter>(new EtcdArbiter(endpoint, key, std::move(http)));
}

std::unique_ptr<Arbiter> MakeNoArbiter() { return std::make_unique<NoArbiter>(); }

}  // namespace understudy::failover
