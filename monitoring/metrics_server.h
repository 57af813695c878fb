// MetricsServer: an agent's Prometheus endpoint — `GET /metrics` on the configured address,
// serving one registry (prometheus-cpp's exposer). Metrics themselves are declared in
// agent_metrics.h; this file only owns the HTTP side.
#ifndef UNDERSTUDY_MONITORING_METRICS_SERVER_H_
#define UNDERSTUDY_MONITORING_METRICS_SERVER_H_

#include <memory>
#include <string>

#include "common/result.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace understudy::monitoring {

class MetricsServer {
 public:
  // Serves on `listen` ("0.0.0.0:9464"; port 0 picks a free one). kIOError naming the address
  // when it cannot bind.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen);
  ~MetricsServer();

  prometheus::Registry& registry() { return *registry_; }
  // The bound address, e.g. "127.0.0.1:40123".
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace understudy::monitoring

#endif  // UNDERSTUDY_MONITORING_METRICS_SERVER_H_
