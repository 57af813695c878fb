// PrometheusServer: a real Prometheus (Debian's `prometheus` package) for tests, scraping the
// given targets every 500 ms on loopback, with its HTTP query API for assertions. Killed and
// its data removed on destruction.
#ifndef UNDERSTUDY_TESTS_HARNESS_PROMETHEUS_SERVER_H_
#define UNDERSTUDY_TESTS_HARNESS_PROMETHEUS_SERVER_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/result.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {

// Empty when the prometheus binary is installed; otherwise why not (for a skip message).
std::optional<std::string> PrometheusUnavailableReason();

class PrometheusServer {
 public:
  // `targets`: "127.0.0.1:40123" each (their /metrics is scraped).
  static Result<std::unique_ptr<PrometheusServer>> Start(const std::vector<std::string>& targets);

  // Runs an instant PromQL query; the result vector (each {"metric": {...}, "value": [t, "v"]}).
  Result<nlohmann::json> Query(const std::string& promql) const;
  // The single value of a query that must return exactly one series; kNotFound otherwise.
  Result<double> QueryValue(const std::string& promql) const;

 private:
  explicit PrometheusServer(ScratchDir dir) : dir_(std::move(dir)) {}

  ScratchDir dir_;
  uint16_t port_ = 0;
  std::optional<ChildProcess> process_;
};

// Fetches http://address/metrics (the text exposition format).
Result<std::string> ScrapeMetrics(const std::string& address);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_PROMETHEUS_SERVER_H_
