#include "tests/harness/etcd_server.h"

#include <cctype>
#include <cstdlib>
#include <thread>

#include "common/http_client.h"
#include "tests/harness/free_port.h"
#include "tests/harness/network_lab.h"
#include "tests/harness/runfiles.h"

namespace understudy::testing {

namespace {

// Names become file names and a shell argument: letters, digits, '.', '-' only.
bool IsPlainName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  return true;
}

Status MakeCertificates(const std::string& pki, const std::string& name) {
  if (!IsPlainName(name)) return Status::InvalidArgument("certificate name '" + name + "'");
  std::string command = RunfilePath("deploy/make-certs.sh") + " " + pki + " " + name + " > /dev/null";
  if (std::system(command.c_str()) != 0) return Status::Internal("deploy/make-certs.sh " + pki + " " + name + " failed");
  return Status::Ok();
}

}  // namespace

std::optional<std::string> EtcdUnavailableReason() {
  Result<std::string> binary = FindExecutable("etcd");
  if (!binary.ok()) return "etcd is not installed (Debian package etcd-server): " + binary.status().message();
  return std::nullopt;
}

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start(const std::string& host, const std::string& netns) {
  UNDERSTUDY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("ut-etcd"));
  std::unique_ptr<EtcdServer> server(new EtcdServer(std::move(dir)));
  server->host_ = host;
  server->netns_ = netns;
  if (netns.empty()) {
    UNDERSTUDY_ASSIGN_OR_RETURN(server->client_port_, FreePort());
    UNDERSTUDY_ASSIGN_OR_RETURN(server->peer_port_, FreePort());
  } else {
    // A namespace of its own: etcd's usual ports are free there.
    server->client_port_ = 2379;
    server->peer_port_ = 2380;
  }
  server->endpoint_ = "https://" + host + ":" + std::to_string(server->client_port_);
  server->pki_ = server->dir_.path() + "/pki";
  // The server's certificate names its address (an IP subjectAltName).
  UNDERSTUDY_RETURN_IF_ERROR(MakeCertificates(server->pki_, host));
  UNDERSTUDY_ASSIGN_OR_RETURN(server->harness_credentials_, server->IssueClientCredentials("harness"));
  UNDERSTUDY_RETURN_IF_ERROR(server->Launch());
  return server;
}

Result<failover::EtcdCredentials> EtcdServer::IssueClientCredentials(const std::string& name) const {
  UNDERSTUDY_RETURN_IF_ERROR(MakeCertificates(pki_, name));
  return failover::EtcdCredentials{pki_ + "/ca.pem", pki_ + "/" + name + ".pem", pki_ + "/" + name + ".key"};
}

Status EtcdServer::Launch() {
  // Peers talk plain HTTP: one member, nobody to talk to. Clients must use TLS and a
  // certificate from our CA.
  std::string peer = "http://" + host_ + ":" + std::to_string(peer_port_);
  const std::string server_cert = pki_ + "/" + host_;
  std::vector<std::string> argv = netns_.empty() ? std::vector<std::string>{} : NetnsExec(netns_);
  std::vector<std::string> etcd = {"etcd", "--name", "ut", "--data-dir", dir_.path() + "/data", "--listen-client-urls",
                                   endpoint_, "--advertise-client-urls", endpoint_, "--listen-peer-urls", peer,
                                   "--initial-advertise-peer-urls", peer, "--initial-cluster", "ut=" + peer,
                                   "--cert-file", server_cert + ".pem", "--key-file", server_cert + ".key",
                                   "--trusted-ca-file", pki_ + "/ca.pem", "--client-cert-auth",
                                   "--heartbeat-interval", "10", "--election-timeout", "100", "--log-level", "error"};
  argv.insert(argv.end(), etcd.begin(), etcd.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess process, ChildProcess::Spawn(argv, dir_.path() + "/etcd.log"));
  process_.emplace(std::move(process));
  const HttpOptions tls = {.ca_file = harness_credentials_.ca_file,
                           .cert_file = harness_credentials_.cert_file,
                           .key_file = harness_credentials_.key_file,
                           .max_body_bytes = 64 * 1024};
  Deadline deadline = Deadline::AfterMillis(15000);
  while (!deadline.Expired()) {
    bool answered = false;
    auto ask = [&] {
      answered = HttpPost(endpoint_ + "/v3/kv/range", R"({"key":"AA=="})", Deadline::AfterMillis(500), tls).ok();
    };
    if (netns_.empty()) {
      ask();
    } else {
      UNDERSTUDY_RETURN_IF_ERROR(RunInNetworkNamespace(netns_, ask));
    }
    if (answered) return Status::Ok();
    if (!process_->Running()) return Status::Broken("etcd exited during start-up (see " + dir_.path() + "/etcd.log)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::DeadlineExceeded("etcd did not answer within 15 s (see " + dir_.path() + "/etcd.log)");
}

Status EtcdServer::Restart() {
  process_->Kill();
  return Launch();
}

}  // namespace understudy::testing
