#include "monitoring/metrics_server.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <exception>

namespace understudy::monitoring {

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = std::make_shared<prometheus::Registry>();
  try {
    // prometheus-cpp reports a failed bind by throwing; this is the edge where it becomes a Status.
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/1);
  } catch (const std::exception& error) {
    return Status::IOError("cannot serve metrics on " + listen + ": " + error.what());
  }
  server->exposer_->RegisterCollectable(server->registry_);
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  std::string host = listen.substr(0, listen.rfind(':'));
  server->address_ = host + ":" + (ports.empty() ? std::string("?") : std::to_string(ports.front()));
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace understudy::monitoring
