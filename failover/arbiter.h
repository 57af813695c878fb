// Arbiter: where the pair agrees, by one compare-and-swap, who owns a VM.
//
// The ownership record (one per VM) names the owner and the mode:
//   {"owner": "host1", "mode": "protected"}     host1 runs the VM; output needs acks
//   {"owner": "host1", "mode": "unprotected"}   host1 runs it without a secondary
//   {"owner": "host2", "mode": "promoted"}      the standby on host2 took over
// Only the two moves that break the output-commit gate change it — the secondary promoting
// and the primary going unprotected — and each must win CompareAndSwap against the revision
// both sides last saw. Exactly one can win for the same revision. failover/SAFETY.md has the
// argument.
//
// Implementations: EtcdArbiter (clusters), NoArbiter (single-host demos; warns loudly that
// split brain is then possible).
//
// Thread safety: implementations are thread-safe.
#ifndef UNDERSTUDY_FAILOVER_ARBITER_H_
#define UNDERSTUDY_FAILOVER_ARBITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "common/deadline.h"
#include "common/result.h"

namespace understudy::failover {

struct OwnershipRecord {
  std::string owner;
  std::string mode;
  uint64_t revision = 0;  // the record's modification revision; 0 when it does not exist

  bool operator==(const OwnershipRecord&) const = default;
};

class Arbiter {
 public:
  virtual ~Arbiter() = default;

  // The current record (revision 0 if none). kBroken/kDeadlineExceeded when unreachable,
  // kCorruption when the stored record or the reply is malformed.
  virtual Result<OwnershipRecord> Read(Deadline deadline) = 0;

  // Writes owner/mode iff the record's revision is still `expected_revision` (0: absent).
  // true: won; false: lost (someone changed it first). An error means the arbiter could not
  // decide (unreachable): neither side may then break the output-commit gate. After
  // kDeadlineExceeded the swap may have been applied: only a read tells.
  virtual Result<bool> CompareAndSwap(uint64_t expected_revision, const std::string& owner, const std::string& mode,
                                      Deadline deadline) = 0;

  virtual std::string Describe() const = 0;
};

// How an agent proves itself to etcd and checks etcd: PEM files (failover/failover_config.h).
struct EtcdCredentials {
  std::string ca_file;    // the CA that signs etcd's server certificate; required for https
  std::string cert_file;  // this agent's client certificate (etcd --client-cert-auth), or empty
  std::string key_file;   // its key; empty exactly when cert_file is
};

// Talks to etcd through its v3 JSON gateway (HTTPS POSTs through libcurl; see the .cc for why
// not gRPC). `endpoint` is "https://host:port" (needs credentials.ca_file) or, on a trusted
// network, "http://host:port"; `key` e.g. "/understudy/vms/web1/owner". Every call ends by its
// deadline: kDeadlineExceeded when etcd did not answer in time (a swap's outcome is then
// unknown: read the record), kBroken when it could not be reached or refused the call,
// kCorruption when its reply is malformed.
Result<std::unique_ptr<Arbiter>> MakeEtcdArbiter(const std::string& endpoint, const std::string& key,
                                                 const EtcdCredentials& credentials = {});

// Always wins; logs a warning that split brain is possible. For one host only: the config
// accepts it only when every address is loopback (failover/failover_config.h).
std::unique_ptr<Arbiter> MakeNoArbiter();

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_ARBITER_H_
