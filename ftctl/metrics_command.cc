// ftctl metrics: the key numbers from each agent's /metrics.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "common/http_client.h"
#include "control/control_server.h"
#include "ftctl/commands.h"

namespace understudy::ftctl {

using nlohmann::json;

namespace {

// Prints an agent's /metrics without the histogram buckets and the inactive pair states,
// with the labels every series shares (vm, role, host) said once, and each histogram's mean.
int PrintMetrics(const std::string& dir) {
  Result<json> status = control::AgentStatus(dir, Deadline::AfterMillis(2000));
  if (!status.ok()) {
    std::printf("%s  unreachable: %s\n", dir.c_str(), status.status().ToString().c_str());
    return 1;
  }
  std::string address = status->value("metrics_address", "");
  if (address.rfind(':') == std::string::npos) {
    std::printf("%s  serves no metrics\n", dir.c_str());
    return 1;
  }
  // The address comes from the agent's answer; HttpGet refuses anything but an http URL.
  HttpOptions options;
  options.max_body_bytes = 8u << 20;  // a /metrics page is a few hundred KiB at most
  Result<std::string> scrape = HttpGet("http://" + address + "/metrics", Deadline::AfterMillis(2000), options);
  if (!scrape.ok()) {
    std::printf("%s  /metrics at %s failed: %s\n", dir.c_str(), address.c_str(), scrape.status().ToString().c_str());
    return 1;
  }
  std::printf("%s  (%s, http://%s/metrics)\n", dir.c_str(), status->value("role", "?").c_str(), address.c_str());
  std::map<std::string, double> sums, counts;
  std::istringstream lines(*scrape);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("understudy_", 0) != 0 || line.find("_bucket{") != std::string::npos) continue;
    size_t space = line.rfind(' ');
    std::string series = line.substr(0, space);
    double value = std::atof(line.c_str() + space + 1);
    if (series.rfind("understudy_pair_state{", 0) == 0 && value == 0) continue;
    std::string name = series.substr(0, series.find('{'));
    if (name.size() > 4 && name.compare(name.size() - 4, 4, "_sum") == 0) {
      sums[name.substr(0, name.size() - 4)] += value;
      continue;
    }
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_count") == 0) {
      counts[name.substr(0, name.size() - 6)] += value;
      continue;
    }
    // Keep only the labels that tell series apart (state, path, stream, result).
    std::string labels;
    for (const char* label : {"state", "path", "stream", "result"}) {
      size_t at = series.find(std::string(label) + "=\"");
      if (at == std::string::npos) continue;
      size_t end = series.find('"', at + std::strlen(label) + 2);
      labels += (labels.empty() ? "" : ",") + series.substr(at, end - at + 1);
    }
    std::printf("  %-52s %g\n", (name + (labels.empty() ? "" : "{" + labels + "}")).c_str(), value);
  }
  for (const auto& [name, count] : counts) {
    double mean = count > 0 ? sums[name] / count : 0;
    std::printf("  %-52s %g observations, mean %g\n", name.c_str(), count, mean);
  }
  return 0;
}

}  // namespace

int MetricsCommand(const std::vector<std::string>& dirs) {
  int failures = 0;
  for (const std::string& dir : dirs) failures += PrintMetrics(dir);
  return failures == 0 ? 0 : 1;
}

}  // namespace understudy::ftctl
