// EtcdServer: a real, single-member etcd (Debian's etcd-server) for tests, on loopback ports
// it picks, with fast raft timings (--heartbeat-interval 10 --election-timeout 100). Killed
// and its data removed on destruction.
//
// It serves clients over https only and requires a client certificate (--client-cert-auth),
// as a deployment's etcd should (deploy/CLUSTER.md): its own CA, its server certificate (for
// its IP address) and client certificates are made per server with deploy/make-certs.sh in
// the server's scratch directory (under $TEST_TMPDIR).
#ifndef UNDERSTUDY_TESTS_HARNESS_ETCD_SERVER_H_
#define UNDERSTUDY_TESTS_HARNESS_ETCD_SERVER_H_

#include <memory>
#include <optional>
#include <string>

#include "common/child_process.h"
#include "common/result.h"
#include "failover/arbiter.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {

// Empty when the etcd binary is installed; otherwise why not (for a skip message).
std::optional<std::string> EtcdUnavailableReason();

class EtcdServer {
 public:
  // Starts etcd listening on `host` and waits until it answers: on loopback by default, or
  // inside network namespace `netns` (tests/harness/network_lab.h) on that host's address.
  static Result<std::unique_ptr<EtcdServer>> Start(const std::string& host = "127.0.0.1", const std::string& netns = "");

  // "https://127.0.0.1:PORT"
  const std::string& endpoint() const { return endpoint_; }
  // A client certificate for `name` signed by this etcd's CA, with the CA file: what an agent
  // named `name` puts in failover.etcd_{ca,cert,key}_file.
  Result<failover::EtcdCredentials> IssueClientCredentials(const std::string& name) const;
  // The CA only, without a client certificate (etcd refuses such clients).
  failover::EtcdCredentials CaOnly() const { return {pki_ + "/ca.pem", "", ""}; }

  void Kill() { process_->Kill(); }
  // Restarts on the same ports and data (after Kill).
  Status Restart();

 private:
  EtcdServer(ScratchDir dir) : dir_(std::move(dir)) {}
  Status Launch();

  ScratchDir dir_;
  std::string pki_;
  std::string host_;
  std::string netns_;
  uint16_t client_port_ = 0, peer_port_ = 0;
  std::string endpoint_;
  failover::EtcdCredentials harness_credentials_;  // the harness's own, for its readiness probe
  std::optional<ChildProcess> process_;
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_ETCD_SERVER_H_
