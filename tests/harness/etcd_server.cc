#include "tests/harness/etcd_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/unique_fd.h"
#include "failover/http_client.h"
#include "tests/harness/free_port.h"
#include "tests/harness/network_lab.h"

namespace understudy::testing {


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
  server->endpoint_ = "http://" + host + ":" + std::to_string(server->client_port_);
  UNDERSTUDY_RETURN_IF_ERROR(server->Launch());
  return server;
}

Status EtcdServer::Launch() {
  std::string client = "http://" + host_ + ":" + std::to_string(client_port_);
  std::string peer = "http://" + host_ + ":" + std::to_string(peer_port_);
  std::vector<std::string> argv = netns_.empty() ? std::vector<std::string>{} : NetnsExec(netns_);
  std::vector<std::string> etcd = {"etcd", "--name", "ut", "--data-dir", dir_.path() + "/data", "--listen-client-urls", client,
                           "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
                           peer, "--initial-cluster", "ut=" + peer, "--heartbeat-interval", "10",
                           "--election-timeout", "100", "--log-level", "error"};
  argv.insert(argv.end(), etcd.begin(), etcd.end());
  UNDERSTUDY_ASSIGN_OR_RETURN(ChildProcess process, ChildProcess::Spawn(argv, dir_.path() + "/etcd.log"));
  process_.emplace(std::move(process));
  Deadline deadline = Deadline::AfterMillis(15000);
  while (!deadline.Expired()) {
    bool answered = false;
    auto ask = [&] {
      Result<failover::HttpResponse> reply =
          failover::HttpPost(host_, client_port_, "/v3/kv/range", R"({"key":"AA=="})", Deadline::AfterMillis(500));
      answered = reply.ok() && reply->status == 200;
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
  return Status::DeadlineExceeded("etcd did not answer within 15 s");
}

Status EtcdServer::Restart() {
  process_->Kill();
  return Launch();
}

}  // namespace understudy::testing
