// deploy/grafana-dashboard.json must parse, and every metric any panel queries must be one
// the agents really export: cross-checked against live /metrics scrapes of both agents of a
// running pair (so a renamed metric breaks this test, not an operator's dashboard).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "tests/harness/agent_pair.h"
#include "tests/harness/prometheus_server.h"

namespace understudy::testing {
namespace {

using nlohmann::json;

// Every "expr" of every panel, rows' nested panels included.
void CollectQueries(const json& panels, std::vector<std::pair<std::string, std::string>>& queries) {
  for (const json& panel : panels) {
    std::string title = panel.value("title", "(untitled)");
    for (const json& target : panel.value("targets", json::array())) {
      if (target.contains("expr")) queries.emplace_back(title, target["expr"].get<std::string>());
    }
    if (panel.contains("panels")) CollectQueries(panel["panels"], queries);
  }
}

// The metric names a /metrics scrape exposes (histogram series with their suffixes).
std::set<std::string> ExportedNames(const std::string& scrape) {
  std::set<std::string> names;
  std::istringstream lines(scrape);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

TEST(GrafanaDashboardTest, EveryPanelQueriesMetricsTheAgentsExport) {
  UNDERSTUDY_REQUIRE_AGENT_PAIR(/*separate_hosts=*/false);
  std::ifstream file(RunfilePath("deploy/grafana-dashboard.json"));
  json dashboard = json::parse(file, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(dashboard.is_object()) << "the dashboard is not valid JSON";
  std::vector<std::pair<std::string, std::string>> queries;
  CollectQueries(dashboard.value("panels", json::array()), queries);
  ASSERT_GT(queries.size(), 5u) << "a dashboard with hardly any queries";

  AgentPairOptions options;
  options.guest = {.pages = 64};
  options.verify_period_ms = 1000;
  auto pair = AgentPair::Start(options, "grafana");
  ASSERT_TRUE(pair.ok()) << pair.status();
  std::set<std::string> exported;
  for (const Result<json>& status : {(*pair)->PrimaryStatus(), (*pair)->SecondaryStatus()}) {
    ASSERT_TRUE(status.ok());
    Result<std::string> scrape = ScrapeMetrics((*status)["metrics_address"]);
    ASSERT_TRUE(scrape.ok()) << scrape.status();
    std::set<std::string> names = ExportedNames(*scrape);
    exported.insert(names.begin(), names.end());
  }

  const std::regex metric("understudy_[a-z0-9_]+");
  std::set<std::string> checked;
  for (const auto& [title, expr] : queries) {
    for (auto match = std::sregex_iterator(expr.begin(), expr.end(), metric); match != std::sregex_iterator(); ++match) {
      std::string name = match->str();
      checked.insert(name);
      EXPECT_TRUE(exported.count(name)) << "panel '" << title << "' queries " << name << ", which no agent exports";
    }
  }
  std::printf("%zu queries in %zu panels reference %zu metrics, all exported\n", queries.size(),
              dashboard["panels"].size(), checked.size());
}

}  // namespace
}  // namespace understudy::testing
