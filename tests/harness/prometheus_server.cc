#include "tests/harness/prometheus_server.h"

#include <fstream>
#include <thread>

#include "common/http_client.h"
#include "tests/harness/free_port.h"

namespace understudy::testing {

namespace {

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

}  // namespace

std::optional<std::string> PrometheusUnavailableReason() {
  Result<std::string> binary = FindExecutable("prometheus");
  if (!binary.ok()) return "Prometheus is not installed (Debian package prometheus): " + binary.status().message();
  return std::nullopt;
}

Result<std::unique_ptr<PrometheusServer>> PrometheusServer::Start(const std::vector<std::string>& targets) {
  UNDERSTUDY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("ut-prometheus"));
  std::unique_ptr<PrometheusServer> server(new PrometheusServer(std::move(dir)));
  UNDERSTUDY_ASSIGN_OR_RETURN(server->port_, FreePort());
  const std::string config = server->dir_.path() + "/prometheus.yml";
  {
    std::ofstream file(config);
    file << "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\n"
         << "scrape_configs:\n  - job_name: understudy\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i) file << (i ? ", " : "") << '"' << targets[i] << '"';
    file << "]\n";
    if (!file) return Status::IOError("cannot write " + config);
  }
  const std::string listen = "127.0.0.1:" + std::to_string(server->port_);
  UNDERSTUDY_ASSIGN_OR_RETURN(
      ChildProcess process,
      ChildProcess::Spawn({"prometheus", "--config.file=" + config, "--storage.tsdb.path=" + server->dir_.path() + "/data",
                           "--web.listen-address=" + listen, "--log.level=warn"},
                          server->dir_.path() + "/prometheus.log"));
  server->process_.emplace(std::move(process));
  Deadline deadline = Deadline::AfterMillis(30000);
  while (!deadline.Expired()) {
    Result<std::string> ready =
        HttpGet("http://127.0.0.1:" + std::to_string(server->port_) + "/-/ready", Deadline::AfterMillis(500));
    if (ready.ok()) return server;
    if (!server->process_->Running()) {
      return Status::Broken("prometheus exited during start-up (see " + server->dir_.path() + "/prometheus.log)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::DeadlineExceeded("prometheus was not ready within 30 s");
}

Result<nlohmann::json> PrometheusServer::Query(const std::string& promql) const {
  Result<std::string> reply = HttpGet("http://127.0.0.1:" + std::to_string(port_) + "/api/v1/query?query=" + UrlEncode(promql),
                                       Deadline::AfterMillis(5000));
  if (!reply.ok()) return Status::Internal("query '" + promql + "' failed: " + reply.status().message());
  nlohmann::json body = nlohmann::json::parse(*reply, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || body.value("status", "") != "success") {
    return Status::Internal("query '" + promql + "' failed: " + *reply);
  }
  return body["data"]["result"];
}

Result<double> PrometheusServer::QueryValue(const std::string& promql) const {
  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json result, Query(promql));
  if (!result.is_array() || result.size() != 1) {
    return Status::NotFound("query '" + promql + "' returned " + result.dump());
  }
  return std::stod(result[0]["value"][1].get<std::string>());
}

Result<std::string> ScrapeMetrics(const std::string& address) {
  // A /metrics page is a few hundred KiB at most.
  HttpOptions options;
  options.max_body_bytes = 8u << 20;
  return HttpGet("http://" + address + "/metrics", Deadline::AfterMillis(5000), options);
}

}  // namespace understudy::testing
